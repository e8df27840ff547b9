// String.prototype.isWellFormed (ES2024) is in Node 20's V8; the ES2022 lib we compile against lacks its type.
interface String {
  /** False when the string holds a lone UTF-16 surrogate, which no Unicode encoding can carry. */
  isWellFormed(): boolean;
}
