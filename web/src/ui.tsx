/** Shared bits: the model hook, avatars, icons, message ticks. */
import { createContext, type ComponentChildren } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import type { MessageStatus } from "@edge-chat/sdk";
import { hueOf, initials } from "./format";
import type { AppModel } from "./model";

export const ModelContext = createContext<AppModel | null>(null);

/** The model, re-rendering the caller on every change. */
export function useModel(): AppModel {
  const model = useContext(ModelContext);
  if (!model) throw new Error("no model");
  const [, setVersion] = useState(model.version);
  useEffect(() => model.subscribe(() => setVersion(model.version)), [model]);
  return model;
}

export function Avatar(props: { id: string; name: string; online?: boolean; size?: "sm" | "md"; group?: boolean }) {
  return (
    <span class={`avatar ${props.size ?? "md"}`} style={{ "--hue": String(hueOf(props.id)) }} aria-hidden="true">
      {props.group ? <Icon name="group" /> : initials(props.name)}
      {props.online !== undefined && <span class={`presence-dot ${props.online ? "online" : "offline"}`} />}
    </span>
  );
}

const ICONS: Record<string, ComponentChildren> = {
  lock: (
    <>
      <rect x="5" y="10.5" width="14" height="9.5" rx="2" />
      <path d="M8 10.5V8a4 4 0 0 1 8 0v2.5" />
    </>
  ),
  edit: <path d="M4 20h4l10.5-10.5a2.8 2.8 0 0 0-4-4L4 16v4zM13.5 6.5l4 4" />,
  group: (
    <>
      <circle cx="9" cy="8" r="3.2" />
      <path d="M3 19c.6-3.2 3-5 6-5s5.4 1.8 6 5" />
      <circle cx="17" cy="9" r="2.4" />
      <path d="M16 14.2c2.4.2 4.3 1.7 5 4.3" />
    </>
  ),
  bell: <path d="M6 16V11a6 6 0 1 1 12 0v5l2 2H4l2-2zM10 20a2 2 0 0 0 4 0" />,
  bellOff: <path d="M6 16V11a6 6 0 0 1 9.5-4.9M18 11v5l2 2H8M10 20a2 2 0 0 0 4 0M3 3l18 18" />,
  logout: <path d="M15 4h3a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-3M10 16l-4-4 4-4M6 12h10" />,
  back: <path d="M15 5l-7 7 7 7" />,
  send: <path d="M4 12l16-8-6 16-2.5-6.5L4 12z" />,
  clip: <path d="M20 11.5l-8.2 8.2a5 5 0 0 1-7-7L13 4.5a3.3 3.3 0 0 1 4.7 4.7l-8.2 8.2a1.7 1.7 0 0 1-2.4-2.4L14.7 7.4" />,
  close: <path d="M6 6l12 12M18 6L6 18" />,
  phone: <path d="M6.6 3.5h2.6l1.4 4-2 1.5a11 11 0 0 0 6.4 6.4l1.5-2 4 1.4v2.6a2 2 0 0 1-2.2 2A16.5 16.5 0 0 1 4.6 5.7a2 2 0 0 1 2-2.2z" />,
  hangup: <path d="M3.2 14.6l-.6-2.4C5 10.1 8.3 9 12 9s7 1.1 9.4 3.2l-.6 2.4-4-.9-.5-2.4a11 11 0 0 0-8.6 0l-.5 2.4-4 .9z" />,
  video: (
    <>
      <rect x="3" y="6.5" width="12.5" height="11" rx="2" />
      <path d="M15.5 10.5l5.5-3v9l-5.5-3" />
    </>
  ),
  videoOff: (
    <>
      <path d="M15.5 13.5v2a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h1.5M10 6.5h3.5a2 2 0 0 1 2 2v2l5.5-3v9l-2.5-1.4" />
      <path d="M3 3l18 18" />
    </>
  ),
  mic: (
    <>
      <rect x="9" y="3" width="6" height="11" rx="3" />
      <path d="M5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21" />
    </>
  ),
  micOff: (
    <>
      <path d="M15 10V6a3 3 0 0 0-5.8-1M9 9v2a3 3 0 0 0 4.6 2.5M5.5 11a6.5 6.5 0 0 0 10.4 5.2M18.5 11c0 .8-.1 1.5-.4 2.2M12 17.5V21" />
      <path d="M3 3l18 18" />
    </>
  ),
  clock: (
    <>
      <circle cx="12" cy="12" r="8" />
      <path d="M12 8v4.5l3 1.8" />
    </>
  ),
  shield: <path d="M12 3l7.5 3v5.5c0 4.5-3.2 8.2-7.5 9.5-4.3-1.3-7.5-5-7.5-9.5V6L12 3z" />,
  block: (
    <>
      <circle cx="12" cy="12" r="8.5" />
      <path d="M6 6l12 12" />
    </>
  ),
  alert: (
    <>
      <circle cx="12" cy="12" r="9" />
      <path d="M12 7v6M12 16.5v.5" />
    </>
  ),
};

export function Icon(props: { name: keyof typeof ICONS | string; class?: string }) {
  return (
    <svg class={`icon ${props.class ?? ""}`} viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      {ICONS[props.name]}
    </svg>
  );
}

const STATUS_LABEL: Record<string, string> = {
  pending: "Sending",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  failed: "Not sent",
};

/** ✓ sent, ✓✓ delivered, blue ✓✓ read, a clock while pending. */
export function Ticks(props: { status: MessageStatus }) {
  const { status } = props;
  const label = STATUS_LABEL[status] ?? status;
  if (status === "pending") return <span class="ticks pending" role="img" aria-label={label} title={label}><Icon name="clock" /></span>;
  if (status === "failed") return <span class="ticks failed" role="img" aria-label={label} title={label}><Icon name="alert" /></span>;
  return (
    <span class={`ticks ${status}`} role="img" aria-label={label} title={label}>
      <svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
        {status === "sent" ? <path d="M5 12.5l4.5 4.5L19 7.5" /> : (
          <>
            <path d="M2.5 12.5L7 17l9.5-9.5" />
            <path d="M11 16l1 1 9.5-9.5" />
          </>
        )}
      </svg>
    </span>
  );
}
