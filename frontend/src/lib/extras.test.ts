import { describe, expect, it } from 'vitest';
import { fillPrompt } from './extras';

describe('fillPrompt', () => {
  it('fills every occurrence, with or without spaces inside the braces', () => {
    expect(fillPrompt('Hi {{name}}, {{ name }}! {{lang}}', { name: 'Ann', lang: 'fr' })).toBe('Hi Ann, Ann! fr');
  });

  it('leaves unknown variables and non-variables as written', () => {
    expect(fillPrompt('{{x}} {{1bad}} {single}', {})).toBe('{{x}} {{1bad}} {single}');
  });

  it('does not interpret replacement patterns in values', () => {
    expect(fillPrompt('{{a}}', { a: '$& $1 {{a}}' })).toBe('$& $1 {{a}}');
  });
});
