import { render } from "preact";
import { App } from "./app";
import { AppModel } from "./model";
import { registerServiceWorker } from "./push";
import { ModelContext } from "./ui";
import "./styles.css";

const model = new AppModel(location.origin);
// For tests and debugging in the console.
(globalThis as { edgeChat?: AppModel }).edgeChat = model;

render(
  <ModelContext.Provider value={model}>
    <App />
  </ModelContext.Provider>,
  document.getElementById("app")!,
);

registerServiceWorker();
void model.start();
