/**
 * Success bodies as pieces (see respond.ts): the JSON `ImagesResponse` (§5) and the SSE event stream (§6).
 * The `malformed` fault is built here because only the builder knows where to break the syntax.
 */
import type { BodyPiece } from './respond';

export interface ResponseImage {
  /** Bytes to send inline as `b64_json`; absent when the item carries a `url`. */
  readonly bytes?: Uint8Array;
  /** Other item fields, in order: `url`, `revised_prompt`, filter annotations. */
  readonly fields: Readonly<Record<string, unknown>>;
}

/** Object members without their braces, ready to follow other members: `"a":1,"b":2`. */
function members(fields: Readonly<Record<string, unknown>>): string {
  return JSON.stringify(fields).slice(1, -1);
}

/**
 * `{"created":…,"data":[{"b64_json":"…",…},…],…tail}`. When `malformed`, the `data` array is closed
 * with a brace instead of a bracket, so the body is broken JSON however a client reads it.
 */
export function imagesResponsePieces(options: {
  readonly created: number;
  readonly images: readonly ResponseImage[];
  readonly tail: Readonly<Record<string, unknown>>;
  readonly malformed?: boolean;
}): BodyPiece[] {
  const pieces: BodyPiece[] = [`{"created":${options.created},"data":[`];
  options.images.forEach((image, index) => {
    const separator = index > 0 ? ',' : '';
    const extra = members(image.fields);
    if (image.bytes) {
      pieces.push(`${separator}{"b64_json":"`, { base64: image.bytes }, `"${extra ? `,${extra}` : ''}}`);
    } else {
      pieces.push(`${separator}{${extra}}`);
    }
  });
  const tail = members(options.tail);
  pieces.push(`${options.malformed ? '}' : ']'}${tail ? `,${tail}` : ''}}`);
  return pieces;
}

export interface StreamEvent {
  readonly type: string;
  readonly bytes: Uint8Array;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** One SSE message per event: `event: <type>`, `data: {"type":…,"b64_json":…,…}`, blank line. */
export function eventStreamPieces(events: readonly StreamEvent[], malformed = false): BodyPiece[] {
  const pieces: BodyPiece[] = [];
  events.forEach((event, index) => {
    const broken = malformed && index === events.length - 1;
    const extra = members(event.fields);
    pieces.push(
      `event: ${event.type}\ndata: {"type":${JSON.stringify(event.type)},"b64_json":"`,
      { base64: event.bytes },
      `"${extra ? `,${extra}` : ''}${broken ? ',]' : '}'}\n\n`,
    );
  });
  return pieces;
}
