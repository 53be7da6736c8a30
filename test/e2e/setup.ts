/** One real server per test file: started before its tests, disposed after them. */
import { afterAll, beforeAll } from "vitest";
import { Api } from "./client";
import { TestServer } from "./server";

export interface ServerContext {
  server: TestServer;
  api: Api;
}

/** Registers the file's hooks; the context's fields are set once `beforeAll` has run. */
export function useServer(): ServerContext {
  const ctx = {} as ServerContext;
  beforeAll(async () => {
    ctx.server = await TestServer.start();
    ctx.api = new Api(ctx.server.baseUrl);
  });
  afterAll(async () => {
    await ctx.server?.dispose();
  });
  return ctx;
}
