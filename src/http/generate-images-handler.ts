import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';

import { generateImages } from '../domain/generate-images';
import type { Services } from '../services';
import { callerOf } from './caller';
import { toImagesResponse } from './images-response';
import { handleAsJob, needsJob, readJobMode, refuseInlineImagesForJobs } from './jobs';
import { withQuerySelectors } from './query-selectors';
import { readJsonBody } from './read-body';
import { deploymentFor, imageOptionsOf, resolveModel } from './request-options';
import { generateImagesBody } from './schemas';

/** POST /images/generations: the upstream's request and response shape, with every image stored and linked. */
export function createGenerateImagesHandler(getServices: () => Promise<Services>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const services = await getServices();
    const mode = readJobMode(request);
    const body = withQuerySelectors(request, await readJsonBody(request, generateImagesBody, services.config.limits.maxJsonBodyBytes));
    const model = resolveModel(body.model, services);
    const caller = callerOf(request, body.user, services.config);
    const command = { prompt: body.prompt, model, user: body.user, caller, options: { ...imageOptionsOf(body), style: body.style } };
    if (needsJob(mode)) {
      refuseInlineImagesForJobs(body.response_format);
      return handleAsJob({ operation: 'generate', command }, mode, services);
    }
    const result = await generateImages(
      { ...command, includeBase64: body.response_format === 'b64_json' },
      { ...services, deploymentFor: deploymentFor(services) },
    );
    context.info(`Generated ${result.images.length} image(s) as request ${result.requestId} with ${model} for ${JSON.stringify(caller.id)}.`);
    return { status: 200, headers: { 'x-request-id': result.requestId }, jsonBody: toImagesResponse(result) };
  };
}
