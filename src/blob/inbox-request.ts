import { z } from 'zod';

import type { AppConfig } from '../config';
import type { Caller } from '../domain/callers';
import { inboxCaller, userCaller } from '../domain/callers';
import { assertValidBlobName } from '../domain/blob-names';
import { ValidationError } from '../domain/errors';
import type { InboxEditRequest } from '../domain/inbox-edits';
import type { InboxBlob } from '../domain/ports';
import { editFields, editImagesFormFields } from '../http/edit-schemas';
import { imageOptionsOf, resolveModel } from '../http/request-options';
import { parseWith } from '../http/read-body';

// The request fields an upload may carry in its metadata (values are text, as in a form).
const METADATA_FIELDS = ['prompt', 'model', 'n', 'size', 'quality', 'output_format', 'output_compression', 'background', 'moderation', 'input_fidelity', 'user'];

const ticketSchema = z.strictObject({
  ...editFields,
  images: z
    .array(z.string({ error: 'each image must be the name of a blob in the inbox.' }), { error: 'images is required: the names of 1-16 blobs in the inbox.' })
    .min(1, 'images must name at least one blob in the inbox.')
    .max(16, 'images may name at most 16 blobs.'),
  mask: z.string({ error: 'mask must be the name of a PNG blob in the inbox.' }).optional(),
});

/**
 * Reads what an inbox upload asks for. A `.json` blob is a job ticket naming its images; any other
 * blob is an image whose request is in its metadata (`prompt`, `size`, ...) or, failing that, in the
 * preset named by its top folder (`INBOX_PRESETS`).
 */
export function parseInboxRequest(blob: InboxBlob, config: AppConfig): InboxEditRequest {
  return blob.name.toLowerCase().endsWith('.json') ? parseTicket(blob, config) : parseImageUpload(blob, config);
}

function parseImageUpload(blob: InboxBlob, config: AppConfig): InboxEditRequest {
  const fromMetadata = Object.fromEntries(
    Object.entries(blob.metadata)
      .map(([key, value]) => [key.toLowerCase(), decodeMetadataValue(value)] as const)
      .filter(([key]) => METADATA_FIELDS.includes(key)),
  );
  const preset = config.inboxPresets.get(blob.name.split('/')[0] ?? '');
  const fields =
    fromMetadata['prompt'] !== undefined
      ? fromMetadata
      : preset && blob.name.includes('/')
        ? { ...Object.fromEntries(Object.entries(preset.options).map(([key, value]) => [key, String(value)])), prompt: preset.prompt }
        : undefined;
  if (!fields) {
    throw new ValidationError(
      `${blob.name} has no prompt: set the blob's metadata 'prompt', upload it under a preset's folder (${[...config.inboxPresets.keys()].join(', ') || 'none configured'}), or send a .json ticket.`,
      { code: 'MissingPrompt', target: 'metadata.prompt' },
    );
  }
  const parsed = parseWith(editImagesFormFields, fields);
  return {
    kind: 'image',
    command: commandOf(parsed, uploaderOf(blob.name, parsed.user), config),
    inputs: { images: [{ container: 'inbox', blobName: blob.name, target: blob.name, fileName: baseName(blob.name) }] },
  };
}

function parseTicket(blob: InboxBlob, config: AppConfig): InboxEditRequest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.concat(blob.content).toString('utf8'));
  } catch {
    throw new ValidationError(`${blob.name} is not valid JSON; a ticket is {"prompt": "...", "images": ["<inbox blob>", ...], "mask"?: "<inbox blob>"}.`, {
      code: 'InvalidTicket',
      target: blob.name,
    });
  }
  const ticket = parseWith(ticketSchema, json);
  const folder = blob.name.includes('/') ? blob.name.slice(0, blob.name.lastIndexOf('/') + 1) : '';
  const input = (reference: string, target: string) => {
    // Names are relative to the ticket's folder unless they start with '/', which means the inbox root.
    const blobName = reference.startsWith('/') ? reference.slice(1) : `${folder}${reference}`;
    assertValidBlobName(blobName, target);
    if (blobName.toLowerCase().endsWith('.json')) throw new ValidationError(`${target} names a ticket, not an image.`, { code: 'InvalidParameter', target });
    return { container: 'inbox' as const, blobName, target, fileName: baseName(blobName) };
  };
  return {
    kind: 'ticket',
    command: commandOf(ticket, uploaderOf(blob.name, ticket.user), config),
    inputs: {
      images: ticket.images.map((reference, index) => input(reference, `images[${index}]`)),
      mask: ticket.mask === undefined ? undefined : input(ticket.mask, 'mask'),
    },
  };
}

/**
 * Who an upload is charged to: the `user` its ticket or metadata names, else the top folder it was
 * dropped in (each team or flow its own folder), else the inbox itself.
 */
function uploaderOf(name: string, user: string | undefined): Caller {
  if (user !== undefined && user.trim() !== '') return userCaller(user.trim());
  return inboxCaller(name.includes('/') ? name.slice(0, name.indexOf('/')) : '');
}

function commandOf(fields: z.infer<typeof editImagesFormFields>, caller: Caller, config: AppConfig) {
  return {
    prompt: fields.prompt,
    model: resolveModel(fields.model, { config }),
    user: fields.user,
    caller,
    options: { ...imageOptionsOf(fields), inputFidelity: fields.input_fidelity },
  };
}

const baseName = (name: string) => name.slice(name.lastIndexOf('/') + 1);

/** Metadata is ASCII only, so tools percent-encode anything else; decode it when it is encoded. */
function decodeMetadataValue(value: string): string {
  if (!/%[0-9A-Fa-f]{2}/.test(value)) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
