/** Socket tickets (POST /v1/sync/ticket), each kept in its own SocketTicket object. */
/** How long a ticket can be redeemed after it is issued. */
export const TICKET_TTL_MS = 60_000;
/** 32 random bytes, base64url: anything else is no ticket, and wakes no object. */
export const TICKET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export const ticketStub = (env: Env, ticket: string) => env.TICKETS.get(env.TICKETS.idFromName(ticket));
