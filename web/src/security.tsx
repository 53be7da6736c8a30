/**
 * The lock of an end-to-end encrypted conversation and its key fingerprints. The server
 * relays the MLS group's keys, so a server that swapped one could read along; people who
 * compare the group code (or a device's fingerprint) out of band would see the swap.
 */
import { useEffect, useState } from "preact/hooks";
import { Icon, useModel } from "./ui";

type Fingerprints = Awaited<ReturnType<NonNullable<ReturnType<typeof useModel>["chat"]>["fingerprints"]>>;

export function EncryptionLock(props: { id: string; encrypted: boolean }) {
  const model = useModel();
  const [open, setOpen] = useState(false);
  const [shown, setShown] = useState<Fingerprints | undefined>(undefined);

  useEffect(() => {
    setOpen(false);
    setShown(undefined);
  }, [props.id]);
  useEffect(() => {
    if (!open || !model.chat) return;
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Not joined yet (a new device joins as it connects): look again until it has.
    const read = () =>
      void model.chat?.fingerprints(props.id).then((f) => {
        if (!live) return;
        setShown(f);
        if (f === null) timer = setTimeout(read, 1_000);
      });
    read();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [open, props.id]);

  if (!props.encrypted) return null;
  const me = model.chat?.deviceId;
  return (
    <div class="security">
      <button
        class={`icon-button ${open ? "active" : ""}`}
        onClick={() => setOpen(!open)}
        aria-expanded={open}
        aria-label="End-to-end encrypted: show key fingerprints"
        title="End-to-end encrypted"
        data-testid="encryption-lock"
      >
        <Icon name="lock" />
      </button>
      {open && (
        <div class="security-panel" role="dialog" aria-label="Key fingerprints" data-testid="fingerprints">
          <p>Messages here are end-to-end encrypted: only the members' devices can read them.</p>
          {shown === undefined && <p>Reading the keys…</p>}
          {shown === null && <p>This device has not joined the conversation's encryption group yet.</p>}
          {shown && (
            <>
              <p>
                Compare this code with the others (in person or by a call). If it is the same on every side, nobody
                in between holds a key:
              </p>
              <code class="group-code" data-testid="group-code">{shown.group}</code>
              <ul>
                {shown.devices.map((d) => (
                  <li key={d.device_id} data-testid="fingerprint" data-device-id={d.device_id}>
                    <span>
                      {model.nameOf(d.user_id)}
                      {d.device_id === me ? " (this device)" : ""}
                    </span>
                    <code>{d.fingerprint}</code>
                  </li>
                ))}
              </ul>
            </>
          )}
        </div>
      )}
    </div>
  );
}
