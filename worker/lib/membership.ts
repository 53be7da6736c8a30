/** The membership check the Worker makes in D1 before it wakes a conversation object. */
import { membershipOf } from "../../objects/directory";
import { ApiError } from "../errors";
import { isConversationId } from "../../shared/ids";

/** `id` when `userId` is a member of it; otherwise the contract's 404 (unknown) or 403 (not a member). */
export async function memberConversation(env: Env, id: string, userId: string): Promise<string> {
  if (!isConversationId(id)) throw new ApiError("not_found", "no such conversation");
  const membership = await membershipOf(env.DB, id, userId);
  if (membership === "unknown") throw new ApiError("not_found", "no such conversation");
  if (membership === "outsider") throw new ApiError("forbidden", "not a member of this conversation");
  return id;
}
