/** Media (CONTRACT.md section 9): ids, content types, the multipart request body and the answers. */
import { z } from "zod";

/** Media ids are `md_` and 128 random bits in base32; the R2 key is built from one, so nothing else passes. */
export const MEDIA_ID_PATTERN = /^md_[a-z2-7]{26}$/;
export const UPLOAD_ID_PATTERN = /^mu_[a-z2-7]{26}$/;

/**
 * A media type as `type/subtype` (RFC 9110 tokens), lowercased, parameters dropped: it is
 * served back as the object's content-type, so it must be one header value and nothing more.
 */
export const ContentType = z
  .string()
  .max(255)
  .transform((s) => s.split(";")[0]!.trim().toLowerCase())
  .pipe(z.string().regex(/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/, "must be a media type such as image/png"));

export const BeginUploadBody = z.object({
  size: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).describe("the whole file's bytes"),
  content_type: ContentType.describe("the file's media type, e.g. video/mp4; application/octet-stream for ciphertext"),
});
export type BeginUploadInput = z.infer<typeof BeginUploadBody>;

export interface MediaInfo {
  media_id: string;
  size: number;
  content_type: string;
  /** Lowercase hex SHA-256 of the stored bytes. */
  sha256: string;
}

export interface UploadStarted {
  upload_id: string;
  media_id: string;
  part_size: number;
  part_count: number;
}

/** Whether a type is shown inline; everything else is served as an attachment. */
export const isInlineType = (contentType: string): boolean => /^(image|video|audio)\//.test(contentType);
