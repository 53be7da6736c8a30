/** Media messages in a conversation: images shown, other files as a download link, and uploads under way. */
import { useEffect, useState } from "preact/hooks";
import type { ChatMessage } from "@edge-chat/sdk";
import { useModel } from "./ui";

export function MediaBody(props: { m: ChatMessage }) {
  const model = useModel();
  const { m } = props;
  const info = m.media ?? {};
  const image = info.type?.startsWith("image/") ?? false;
  const [url, setUrl] = useState<string | null>(null);
  const [failed, setFailed] = useState(false);

  useEffect(() => {
    if (!image || !m.media_id) return;
    let live = true;
    model.media.url(m.conversation_id, m.media_id, m.media).then(
      (u) => live && setUrl(u),
      () => live && setFailed(true),
    );
    return () => {
      live = false;
    };
  }, [m.media_id, image]);

  const caption = info.caption ? <span class="media-caption">{info.caption}</span> : null;
  if (!m.media_id) return <span>📎 Attachment</span>;
  if (image) {
    return (
      <span class="media">
        {url ? (
          <img src={url} alt={info.name ?? "Image"} data-testid="message-image" />
        ) : (
          <span class="media-loading">{failed ? "Image unavailable" : "Loading image…"}</span>
        )}
        {caption}
      </span>
    );
  }
  const name = info.name ?? "file";
  return (
    <span class="media">
      <a
        class="media-file"
        href={url ?? "#"}
        download={name}
        data-testid="message-file"
        onClick={(e) => {
          if (url) return;
          // Fetched with the token on first use, then saved under its name.
          e.preventDefault();
          const target = e.currentTarget;
          model.media.url(m.conversation_id, m.media_id!, m.media).then(
            (u) => {
              setUrl(u);
              target.href = u;
              target.click();
            },
            () => setFailed(true),
          );
        }}
      >
        📎 {name}
      </a>
      {failed && <span class="media-loading"> (download failed)</span>}
      {caption}
    </span>
  );
}

/** Files of this conversation still being uploaded, or whose upload failed. */
export function UploadRows(props: { id: string }) {
  const model = useModel();
  return (
    <>
      {model.media.uploadsIn(props.id).map((u) => (
        <div key={u.key} class={`msg mine ${u.error ? "failed" : "pending"}`} data-testid="upload">
          <div class="bubble">
            <span class="text">📎 {u.name}</span>
            <span class="meta">{u.error ? "" : "Uploading…"}</span>
            {u.error && (
              <span class="failed-note" role="alert">
                Not sent: {u.error}{" "}
                <button class="link" onClick={() => model.media.dismiss(u.key)}>
                  Dismiss
                </button>
              </span>
            )}
          </div>
        </div>
      ))}
    </>
  );
}
