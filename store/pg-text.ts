// Text as Postgres can store it. Kubernetes accepts strings Postgres text cannot hold:
// U+0000 (kube-apiserver takes it in annotations) and lone UTF-16 surrogates (no UTF-8
// form; JSON carries them as \udXXX escapes that json_to_recordset refuses). A record
// holding one must still be written: U+0000 becomes the six characters \u0000, a lone
// surrogate becomes U+FFFD.

export interface StorableText {
  text: string;
  /** Something Postgres cannot store was replaced. */
  escaped: boolean;
  /** The value was longer than the limit and was cut (cutText). */
  cut: boolean;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export function storableText(v: unknown, max: number = MAX_MESSAGE_CHARS): StorableText {
  const s = String(v ?? '');
  let text = s.includes('\u0000') ? s.replaceAll('\u0000', '\\u0000') : s;
  text = text.replace(LONE_SURROGATE, '\ufffd');
  const escaped = text !== s;
  const cut = cutText(text, max);
  return { text: cut, escaped, cut: cut !== text };
}

/** Longest reason or message sluice stores or sends back; longer ones are cut and say so. */
export const MAX_MESSAGE_CHARS = 1024;
/** Longest name (namespace, pod, job, user) stored: a Kubernetes name is at most 253, and two such fit a btree index row. */
export const MAX_NAME_CHARS = 253;

/** `s` cut to at most `max` characters (not inside a surrogate pair), saying how much was cut. */
export function cutText(s: string, max: number = MAX_MESSAGE_CHARS): string {
  if (s.length <= max) return s;
  let end = max;
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${s.slice(0, end)}... (${s.length - end} more characters cut)`;
}
