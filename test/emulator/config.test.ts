import { EmulatorConfigError, emulatorOptionsFromEnv } from '../../emulator/config';

describe('emulator CLI configuration', () => {
  it('defaults to 127.0.0.1:8089 and the server defaults for everything else', () => {
    expect(emulatorOptionsFromEnv({})).toEqual({ host: '127.0.0.1', port: 8089 });
  });

  it('reads every EMULATOR_* variable, treating blank as unset', () => {
    expect(
      emulatorOptionsFromEnv({
        EMULATOR_HOST: '0.0.0.0',
        EMULATOR_PORT: '9000',
        EMULATOR_API_KEY: 'k',
        EMULATOR_DEPLOYMENTS: 'img = gpt-image-2, legacy=dall-e-3',
        EMULATOR_LATENCY_MS: '1500',
        EMULATOR_IMAGE_DETAIL: 'noise',
      }),
    ).toEqual({
      host: '0.0.0.0',
      port: 9000,
      apiKeys: ['k'],
      deployments: { img: 'gpt-image-2', legacy: 'dall-e-3' },
      latencyMs: 1500,
      imageDetail: 'noise',
    });
    expect(emulatorOptionsFromEnv({ EMULATOR_PORT: ' ', EMULATOR_API_KEY: '' })).toEqual({ host: '127.0.0.1', port: 8089 });
  });

  it('lists every bad variable in one error', () => {
    let caught: unknown;
    try {
      emulatorOptionsFromEnv({
        EMULATOR_PORT: '70000',
        EMULATOR_DEPLOYMENTS: 'img=gpt-image-9,broken',
        EMULATOR_LATENCY_MS: '-5',
        EMULATOR_IMAGE_DETAIL: 'photo',
      });
    } catch (error: unknown) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(EmulatorConfigError);
    const problems = caught instanceof EmulatorConfigError ? caught.problems : [];
    expect(problems).toEqual([
      'EMULATOR_PORT must be at most 65535',
      "EMULATOR_DEPLOYMENTS entry 'img=gpt-image-9' names unknown model 'gpt-image-9' (known: gpt-image-1, gpt-image-1-mini, gpt-image-1.5, gpt-image-2, dall-e-3)",
      "EMULATOR_DEPLOYMENTS entry 'broken' is not name=model",
      'EMULATOR_LATENCY_MS must be a whole number',
      "EMULATOR_IMAGE_DETAIL must be 'flat' or 'noise'",
    ]);
  });
});
