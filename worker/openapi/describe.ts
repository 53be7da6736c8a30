/**
 * Small builders for `describeRoute(...)`: the route decorations stay one readable block
 * next to each route. Bodies and responses go through hono-openapi's `resolver`, so the
 * document is generated from the very zod schemas that validate requests; validation
 * itself stays in worker/lib/body.ts, with the contract's error shape.
 */
import { type DescribeRouteOptions, resolver } from "hono-openapi";
import { z } from "zod";
import { ERROR_STATUS, type ErrorCode } from "../../protocol";

export { describeRoute } from "hono-openapi";

type Parameter = NonNullable<DescribeRouteOptions["parameters"]>[number];
type JsonSchema = Record<string, unknown> & { description?: string };

/** A JSON request body, as `readJson(c, schema)` parses it. */
export const jsonBody = (schema: z.ZodType) => ({
  required: true,
  content: { "application/json": { schema: resolver(schema) } },
});

/** A JSON response. */
export const json = (description: string, schema: z.ZodType) => ({
  description,
  content: { "application/json": { schema: resolver(schema) } },
});

/** The contract's error answers this route can give, as references to components.responses. */
export const errors = (...codes: ErrorCode[]) =>
  Object.fromEntries(codes.map((code) => [String(ERROR_STATUS[code]), { $ref: `#/components/responses/${code}` }]));

/** Query parameters from the zod object that `parse(schema, c.req.query())` checks (its input side: strings). */
export function queryParameters(schema: z.ZodType): Parameter[] {
  const object = z.toJSONSchema(schema, { io: "input" }) as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(object.properties ?? {}).map(([name, { description, ...property }]) => ({
    name,
    in: "query",
    required: object.required?.includes(name) ?? false,
    ...(description === undefined ? {} : { description }),
    schema: property,
  }));
}

/** A path parameter; hono-openapi would add a bare one, this one says what it is. */
export const pathParameter = (name: string, description: string): Parameter => ({
  name,
  in: "path",
  required: true,
  description,
  schema: { type: "string" },
});

/** For routes anyone may call: overrides the document's default bearer requirement. */
export const PUBLIC: DescribeRouteOptions["security"] = [];
