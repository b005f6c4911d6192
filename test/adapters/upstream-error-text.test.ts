import { redactUpstreamText, trimMessage } from '../../src/adapters/upstream-error-text';

describe('upstream error text', () => {
  it('keeps the words of a parameter error', () => {
    const message = "Invalid value: '1024x1024'. Supported values are: '1024x1536', '1536x1024', and 'auto'.";
    expect(redactUpstreamText(message)).toBe(message);
  });

  it.each([
    ['Sent to https://oai-prod.openai.azure.com/openai/deployments/x?api-version=1 failed', 'Sent to [url] failed'],
    ['with api-key=0123abcd and key: zz9', 'with api-key=[redacted] and key: [redacted]'],
    ['Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2ln was refused', 'Authorization: Bearer [redacted] was refused'],
    ['link ?sv=2024&sig=AbC%2Bdef ends', 'link ?sv=2024&sig=[redacted] ends'],
    ['request ID 7d1c0a4e-91b2-4c3d-8e5f-0a1b2c3d4e5f, retry', 'request ID [redacted], retry'],
    ['line one\nline two\u0000 end', 'line one line two end'],
  ])('redacts %j', (text, expected) => {
    expect(redactUpstreamText(text)).toBe(expected);
  });

  it('takes out our own secrets wherever they appear', () => {
    expect(redactUpstreamText('the key emulator-key was refused', ['emulator-key'])).toBe('the key [redacted] was refused');
  });

  it('trims after a whole sentence, or cuts with an ellipsis', () => {
    expect(trimMessage('Short.', 300)).toBe('Short.');
    expect(trimMessage(`First sentence here. ${'x'.repeat(400)}`, 50)).toBe('First sentence here.');
    expect(trimMessage('y'.repeat(400), 60)).toBe(`${'y'.repeat(59)}…`);
  });
});
