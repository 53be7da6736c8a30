/**
 * Media in the app (CONTRACT.md section 9): files being sent, and the media already fetched.
 * The bytes need the token, so an `<img src>` cannot fetch them: the SDK does, once per
 * media, and the app shows a blob URL of them.
 */
import type { ChatClient, ChatMessage } from "@edge-chat/sdk";
import { describeError } from "./model";

export interface Upload {
  key: string;
  conversation_id: string;
  name: string;
  error: string | null;
}

export class MediaState {
  uploads: Upload[] = [];
  private readonly urls = new Map<string, Promise<string>>();

  constructor(
    private readonly chat: () => ChatClient,
    private readonly changed: () => void,
  ) {}

  /** Uploads the file and sends it as a media message (the SDK's outbox takes over once it is stored). */
  send(conversationId: string, file: File): void {
    const upload: Upload = { key: crypto.randomUUID(), conversation_id: conversationId, name: file.name, error: null };
    this.uploads = [...this.uploads, upload];
    this.changed();
    this.chat()
      .sendMedia(conversationId, file, { contentType: file.type || undefined, name: file.name })
      .then(
        () => this.dismiss(upload.key),
        (err) => {
          upload.error = describeError(err);
          this.uploads = [...this.uploads];
          this.changed();
        },
      );
  }

  uploadsIn(conversationId: string): Upload[] {
    return this.uploads.filter((u) => u.conversation_id === conversationId);
  }

  dismiss(key: string): void {
    this.uploads = this.uploads.filter((u) => u.key !== key);
    this.changed();
  }

  /** A blob URL of the media's bytes, fetched once. */
  url(conversationId: string, mediaId: string, media?: ChatMessage["media"]): Promise<string> {
    let url = this.urls.get(mediaId);
    if (!url) {
      url = this.chat()
        .fetchMedia(conversationId, mediaId, media)
        .then((blob) => URL.createObjectURL(blob));
      url.catch(() => this.urls.delete(mediaId));
      this.urls.set(mediaId, url);
    }
    return url;
  }

  /** On sign-out: the fetched bytes go. */
  clear(): void {
    for (const url of this.urls.values()) void url.then(URL.revokeObjectURL, () => undefined);
    this.urls.clear();
    this.uploads = [];
  }
}
