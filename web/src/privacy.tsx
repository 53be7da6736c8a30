/**
 * Section 17 on screen (through the SDK's `chat.privacy` and `chat.blocks`): the privacy
 * panel of the sidebar (last seen, who may add me to groups, the blocked users), the banner
 * of a message request, and Block / Unblock for a direct conversation.
 */
import { useEffect, useState } from "preact/hooks";
import type { PrivacySettings } from "@edge-chat/sdk";
import { Icon, useModel } from "./ui";

const LAST_SEEN: [PrivacySettings["last_seen"], string][] = [
  ["everyone", "Everyone I share a chat with"],
  ["contacts", "My contacts"],
  ["nobody", "Nobody"],
];
const ADD_TO_GROUPS: [PrivacySettings["add_to_groups"], string][] = [
  ["everyone", "Everyone"],
  ["contacts", "My contacts"],
];

/** The sidebar's privacy panel. Each choice is saved as it is made. */
export function PrivacyPanel(props: { onClose: () => void }) {
  const model = useModel();
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState(false);
  // Blocks made on another device, or a setting changed there: read afresh on opening.
  useEffect(() => void model.loadPrivacy(), []);
  const settings = model.privacy;

  async function run(action: () => Promise<void>) {
    setError(null);
    setSaved(false);
    setSaving(true);
    try {
      await action();
      setSaved(true);
    } catch (err) {
      setError(model.explain(err));
    } finally {
      setSaving(false);
    }
  }

  const blocked = [...model.blocked.keys()];
  return (
    <section id="privacy-panel" class="panel privacy" aria-label="Privacy" data-testid="privacy-panel" onKeyDown={(e) => e.key === "Escape" && props.onClose()}>
      <h3>Privacy</h3>
      <label for="privacy-last-seen">Who sees my last seen and when I am online</label>
      <select
        id="privacy-last-seen"
        data-testid="privacy-last-seen"
        value={settings?.last_seen}
        disabled={!settings || saving}
        onChange={(e) => void run(() => model.setPrivacy({ last_seen: e.currentTarget.value as PrivacySettings["last_seen"] }))}
      >
        {LAST_SEEN.map(([value, label]) => (
          <option key={value} value={value}>
            {label}
          </option>
        ))}
      </select>
      <label for="privacy-add-to-groups">Who can add me to groups</label>
      <select
        id="privacy-add-to-groups"
        data-testid="privacy-add-to-groups"
        value={settings?.add_to_groups}
        disabled={!settings || saving}
        aria-describedby="privacy-contacts-hint"
        onChange={(e) => void run(() => model.setPrivacy({ add_to_groups: e.currentTarget.value as PrivacySettings["add_to_groups"] }))}
      >
        {ADD_TO_GROUPS.map(([value, label]) => (
          <option key={value} value={value}>
            {label}
          </option>
        ))}
      </select>
      <small id="privacy-contacts-hint" class="hint">
        Your contacts are the people you have written to in a direct chat.
      </small>
      <h3>Blocked</h3>
      {blocked.length === 0 ? (
        <p class="muted">Nobody. Block someone from the top of your chat with them.</p>
      ) : (
        <ul class="blocked-list" role="list">
          {blocked.map((id) => (
            <li key={id} data-testid="blocked-item" data-user-id={id}>
              <span>{model.nameOf(id)}</span>
              <button type="button" class="secondary" data-testid="unblock-user" disabled={saving} onClick={() => void run(() => model.unblock(id))}>
                Unblock
              </button>
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      <p class="hint" role="status">
        {saved && !error ? "Saved." : ""}
      </p>
    </section>
  );
}

/** Blocks (or unblocks) a direct conversation's other member, telling what went wrong if it did. */
function useBlock(peer: string) {
  const model = useModel();
  const [busy, setBusy] = useState(false);
  return {
    busy,
    set: async (on: boolean) => {
      setBusy(true);
      try {
        await (on ? model.block(peer) : model.unblock(peer));
      } catch (err) {
        model.notice(model.explain(err));
      } finally {
        setBusy(false);
      }
    },
  };
}

/**
 * A direct conversation a stranger started (`request: true`): who it is, Accept and Block.
 * Until the user replies the sender is not their contact (what "contacts" settings allow).
 */
export function RequestBanner(props: { id: string; peer: string; name: string; onAccept: () => void }) {
  const model = useModel();
  const block = useBlock(props.peer);
  return (
    <div class="request-banner" role="region" aria-label="Message request" data-testid="request-banner">
      <p>
        <strong>{props.name}</strong> wants to message you.
        <span class="muted"> They are not one of your contacts; replying makes them one.</span>
      </p>
      <div class="row">
        <button
          type="button"
          class="primary"
          data-testid="request-accept"
          onClick={() => {
            model.acceptRequest(props.id);
            props.onAccept();
          }}
        >
          Accept
        </button>
        <button type="button" class="secondary danger" data-testid="request-block" disabled={block.busy} onClick={() => void block.set(true)}>
          Block
        </button>
      </div>
    </div>
  );
}

/** The header's Block / Unblock of a direct conversation. Blocking asks first: the button is small. */
export function BlockButton(props: { peer: string | null; name: string }) {
  const model = useModel();
  const block = useBlock(props.peer ?? "");
  if (!props.peer) return null;
  const blocked = model.isBlocked(props.peer);
  return (
    <button
      class={`icon-button ${blocked ? "active" : ""}`}
      data-testid={blocked ? "unblock-user" : "block-user"}
      aria-label={blocked ? `Unblock ${props.name}` : `Block ${props.name}`}
      title={blocked ? "Unblock" : "Block"}
      aria-pressed={blocked}
      disabled={block.busy}
      onClick={() => {
        if (blocked || globalThis.confirm?.(`Block ${props.name}? They will not be able to message you or see when you are online.`)) void block.set(!blocked);
      }}
    >
      <Icon name="block" />
    </button>
  );
}

/** In place of the composer while the other member is blocked. */
export function BlockedBar(props: { peer: string; name: string }) {
  const block = useBlock(props.peer);
  return (
    <div class="blocked-bar" role="status" data-testid="blocked-bar">
      <span>You blocked {props.name}. This chat is off your list until you unblock them.</span>
      <button type="button" class="link" data-testid="blocked-bar-unblock" disabled={block.busy} onClick={() => void block.set(false)}>
        Unblock
      </button>
    </div>
  );
}
