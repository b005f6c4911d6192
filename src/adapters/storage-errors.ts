import { RestError } from '@azure/storage-blob';

export function isNotFound(error: unknown): boolean {
  return error instanceof RestError && error.statusCode === 404;
}

/** 412 (condition not met) or 409 (blob exists): somebody else wrote first. */
export function isWriteConflict(error: unknown): boolean {
  return error instanceof RestError && (error.statusCode === 412 || error.statusCode === 409);
}
