/** Stubs of the objects by the name they are addressed with. */
export const conversationStub = (env: Env, conversationId: string) => env.CONVERSATION.get(env.CONVERSATION.idFromName(conversationId));
export const inboxStub = (env: Env, userId: string) => env.INBOX.get(env.INBOX.idFromName(userId));
