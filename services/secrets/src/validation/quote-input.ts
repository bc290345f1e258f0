/**
 * Quotes caller input for an error message: escaped (no control characters
 * reach a terminal or log) and cut short (a megabyte of name is not echoed).
 */
export function quoteInput(text: string, max = 64): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}...` : text);
}
