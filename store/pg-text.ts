// Text as Postgres can store it. Kubernetes accepts strings Postgres text cannot hold:
// U+0000 (kube-apiserver takes it in annotations) and lone UTF-16 surrogates (no UTF-8
// form; JSON carries them as \udXXX escapes that json_to_recordset refuses). A record
// holding one must still be written: U+0000 becomes the six characters \u0000, a lone
// surrogate becomes U+FFFD.

export interface StorableText {
  text: string;
  /** Something Postgres cannot store was replaced. */
  escaped: boolean;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export function storableText(v: unknown): StorableText {
  const s = String(v ?? '');
  let text = s.includes('\u0000') ? s.replaceAll('\u0000', '\\u0000') : s;
  text = text.replace(LONE_SURROGATE, '\ufffd');
  return { text, escaped: text !== s };
}
