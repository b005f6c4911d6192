import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';

import type { EditLimits, RawEditInput } from '../domain/edit-images';
import { editImages, prepareEditInputs } from '../domain/edit-images';
import { UnsupportedMediaTypeError } from '../domain/errors';
import type { Services } from '../services';
import { callerOf } from './caller';
import type { EditImagesFields } from './edit-schemas';
import { editImagesFormFields } from './edit-schemas';
import { deploymentFor, imageOptionsOf, resolveModel } from './request-options';
import { toImagesResponse } from './images-response';
import { editLimitsOf, handleAsJob, needsJob, readJobMode, refuseInlineImagesForJobs } from './jobs';
import { withQuerySelectors } from './query-selectors';
import { mediaTypeOf, parseWith } from './read-body';
import { readEditForm } from './read-edit-form';
import { readEditJson } from './read-edit-json';

interface EditRequest {
  readonly fields: EditImagesFields;
  readonly images: readonly RawEditInput[];
  readonly mask?: RawEditInput | undefined;
  /** How the caller named the images, for error targets. */
  readonly imagesTarget: 'image' | 'images';
}

/**
 * POST /images/edits: multipart as the upstream and the `openai` SDK send it, or JSON with images as
 * Power Automate file objects, data URIs, base64 or blob references. Every input is checked from its
 * bytes before the upstream is called; results are stored and linked like generations.
 */
export function createEditImagesHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const services = await getServices();
    const { limits } = services.config;
    const editLimits = { ...editLimitsOf(services.config), maxBodyBytes: limits.maxEditBodyBytes };
    const mode = readJobMode(request);
    const edit = await readEditRequest(request, services, editLimits);
    const inputs = prepareEditInputs({ images: edit.images, mask: edit.mask, imagesTarget: edit.imagesTarget }, editLimits);
    const fields = withQuerySelectors(request, edit.fields);
    const model = resolveModel(fields.model, services);
    const caller = callerOf(request, fields.user, services.config);
    const command = { prompt: fields.prompt, model, user: fields.user, caller, options: { ...imageOptionsOf(fields), inputFidelity: fields.input_fidelity } };
    if (needsJob(mode)) {
      refuseInlineImagesForJobs(fields.response_format);
      return handleAsJob({ operation: 'edit', command, uploads: inputs }, mode, services);
    }
    const result = await editImages({ ...command, includeBase64: fields.response_format === 'b64_json', inputs }, { ...services, deploymentFor: deploymentFor(services) });
    context.info(`Edited ${inputs.images.length} input image(s) into ${result.images.length} as request ${result.requestId} with ${model} for ${JSON.stringify(caller.id)}.`);
    return { status: 200, headers: { 'x-request-id': result.requestId }, jsonBody: toImagesResponse(result) };
  };
}

async function readEditRequest(request: HttpRequest, services: Services, limits: EditLimits & { maxBodyBytes: number }): Promise<EditRequest> {
  const mediaType = mediaTypeOf(request);
  if (mediaType === 'multipart/form-data') {
    const form = await readEditForm(request, limits);
    return { fields: parseWith(editImagesFormFields, form.fields), images: form.images, mask: form.mask, imagesTarget: 'image' };
  }
  if (mediaType === 'application/json' || mediaType.endsWith('+json')) {
    const json = await readEditJson(request, services.inputImages, limits);
    return { ...json, imagesTarget: 'images' };
  }
  throw new UnsupportedMediaTypeError(`Send the edit as multipart/form-data or application/json (got '${mediaType || 'no content type'}').`);
}
