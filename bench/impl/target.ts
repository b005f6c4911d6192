/** One way of serving "generate n images and give back links", measured by the worker. */
export interface BenchTarget {
  /** Resolves with what happened; rejects only on failures the implementation itself throws. */
  generate(n: number): Promise<GenerateOutcome>;
}

export interface StoredImageLink {
  readonly url: string;
  /** Decoded image bytes as stored. */
  readonly bytes: number;
}

export type GenerateOutcome =
  | {
      readonly ok: true;
      /** Sum of the decoded image bytes (0 for the raw call, which decodes nothing). */
      readonly decodedBytes: number;
      /** Bytes of the upstream response body, where the implementation sees them. */
      readonly responseBytes: number;
      readonly images: readonly StoredImageLink[];
    }
  | { readonly ok: false; readonly code: string };

/** A stable, short name for a thrown failure: the HTTP status when there is one, else its code or class. */
export function failureCode(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    if ('status' in error && typeof error.status === 'number') return `HTTP ${error.status}`;
    if ('code' in error && typeof error.code === 'string') return error.code;
  }
  if (error instanceof Error) return error.name;
  return 'UnknownError';
}
