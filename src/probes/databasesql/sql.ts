/**
 * @module probes/databasesql/sql — a small SQL lexer for database spans: the operation and the
 * first collection a statement names (semconv v1.37 db.operation.name, db.collection.name),
 * and the statement with its literals replaced by `?` (db.query.text, "sanitized").
 *
 * Not a parser: it reads tokens and looks at the words around them, so it never fails. What it
 * recognises: `--`, `#` (MySQL) and nested-free `/* *\/` comments; '…' strings with '' and (MySQL)
 * backslash escapes, E'…'/N'…'/X'…'/B'…' prefixes, PostgreSQL $tag$…$tag$ strings; "…" (an
 * identifier, except in MySQL where it is a string), `…` and […] identifiers; numbers (decimal,
 * exponent, 0x hex); placeholders `?`, `?NNN`, `$N`, `:name`, `@name`.
 */

export type TokenKind = "word" | "quoted" | "string" | "number" | "placeholder" | "punct" | "space" | "comment";

export interface Token {
  kind: TokenKind;
  text: string;
}

export interface Dialect {
  /** MySQL: "…" is a string and backslash escapes inside strings; `#` starts a comment */
  mysql?: boolean;
}

const isWordStart = (c: string): boolean => /[A-Za-z_\u0080-\uffff]/.test(c);
const isWordChar = (c: string): boolean => /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
const isDigit = (c: string): boolean => c >= "0" && c <= "9";

/** The statement as tokens; concatenating their texts gives the input back. */
export function tokenize(sql: string, d: Dialect = {}): Token[] {
  const out: Token[] = [];
  const n = sql.length;
  let i = 0;
  const quoted = (start: number, close: string, backslash: boolean): number => {
    let j = start + 1;
    while (j < n) {
      const c = sql[j]!;
      if (backslash && c === "\\") {
        j += 2;
        continue;
      }
      if (c === close) {
        if (sql[j + 1] === close) {
          j += 2; // doubled quote: an escaped quote inside
          continue;
        }
        return j + 1;
      }
      j++;
    }
    return n; // unterminated: the rest is the literal
  };
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1] ?? "";
    let j = i + 1;
    let kind: TokenKind;
    if (/\s/.test(c)) {
      while (j < n && /\s/.test(sql[j]!)) j++;
      kind = "space";
    } else if ((c === "-" && next === "-") || (c === "#" && d.mysql)) {
      while (j < n && sql[j] !== "\n") j++;
      kind = "comment";
    } else if (c === "/" && next === "*") {
      const end = sql.indexOf("*/", i + 2);
      j = end < 0 ? n : end + 2;
      kind = "comment";
    } else if (c === "'") {
      j = quoted(i, "'", d.mysql === true);
      kind = "string";
    } else if (/[EeNnXxBb]/.test(c) && next === "'") {
      j = quoted(i + 1, "'", d.mysql === true || c === "E" || c === "e");
      kind = "string";
    } else if (c === '"') {
      j = quoted(i, '"', d.mysql === true);
      kind = d.mysql ? "string" : "quoted";
    } else if (c === "`") {
      j = quoted(i, "`", false);
      kind = "quoted";
    } else if (c === "[" && !d.mysql) {
      const end = sql.indexOf("]", i + 1);
      j = end < 0 ? n : end + 1;
      kind = "quoted";
    } else if (c === "$") {
      if (isDigit(next)) {
        while (j < n && isDigit(sql[j]!)) j++;
        kind = "placeholder";
      } else {
        // $tag$ … $tag$ (PostgreSQL dollar quoting); a lone $ is punctuation
        const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
        if (m) {
          const end = sql.indexOf(m[0], i + m[0].length);
          j = end < 0 ? n : end + m[0].length;
          kind = "string";
        } else {
          kind = "punct";
        }
      }
    } else if (c === "?") {
      while (j < n && isDigit(sql[j]!)) j++;
      kind = "placeholder";
    } else if ((c === ":" || c === "@") && isWordStart(next) && sql[i - 1] !== ":" && next !== ":") {
      // :name, @name (not PostgreSQL's :: cast, not a second @ of @@ variables)
      while (j < n && isWordChar(sql[j]!)) j++;
      kind = "placeholder";
    } else if (isDigit(c) || (c === "." && isDigit(next))) {
      if (c === "0" && (next === "x" || next === "X")) {
        j = i + 2;
        while (j < n && /[0-9A-Fa-f]/.test(sql[j]!)) j++;
      } else {
        while (j < n && (isDigit(sql[j]!) || sql[j] === ".")) j++;
        if ((sql[j] === "e" || sql[j] === "E") && (isDigit(sql[j + 1] ?? "") || ((sql[j + 1] === "+" || sql[j + 1] === "-") && isDigit(sql[j + 2] ?? "")))) {
          j += 2;
          while (j < n && isDigit(sql[j]!)) j++;
        }
      }
      // 1abc is a word in some dialects (identifiers may start with digits in MySQL)
      if (j < n && isWordStart(sql[j]!)) {
        while (j < n && isWordChar(sql[j]!)) j++;
        kind = "word";
      } else {
        kind = "number";
      }
    } else if (isWordStart(c)) {
      while (j < n && isWordChar(sql[j]!)) j++;
      kind = "word";
    } else {
      kind = "punct";
    }
    out.push({ kind, text: sql.slice(i, j) });
    i = j;
  }
  return out;
}

/** true when the statement has placeholders (its values travel as parameters). */
export function isParameterized(tokens: readonly Token[]): boolean {
  return tokens.some((t) => t.kind === "placeholder");
}

/**
 * db.query.text in sanitized mode (semconv v1.37 db.query.text): a parameterized statement is
 * kept as it is; otherwise every string and number literal becomes `?`.
 */
export function sanitize(sql: string, d: Dialect = {}): string {
  const tokens = tokenize(sql, d);
  if (isParameterized(tokens)) return sql;
  return tokens.map((t) => (t.kind === "string" || t.kind === "number" ? "?" : t.text)).join("");
}

/** Statement keywords accepted as db.operation.name (anything else is not an operation). */
const OPERATIONS = new Set(
  (
    "SELECT INSERT UPDATE DELETE REPLACE MERGE UPSERT CREATE DROP ALTER TRUNCATE RENAME CALL EXEC EXECUTE " +
    "BEGIN START COMMIT ROLLBACK SAVEPOINT RELEASE SET SHOW EXPLAIN DESCRIBE DESC GRANT REVOKE VACUUM ANALYZE " +
    "PRAGMA LOCK UNLOCK COPY DECLARE FETCH CLOSE USE VALUES TABLE LISTEN NOTIFY UNLISTEN REFRESH REINDEX " +
    "CLUSTER COMMENT DISCARD PREPARE DEALLOCATE LOAD OPTIMIZE REPAIR CHECKSUM HANDLER DO ATTACH DETACH"
  ).split(" "),
);

/** Words after which the next name is the collection, per operation (upper-cased). */
const COLLECTION_AFTER: Readonly<Record<string, readonly string[]>> = {
  SELECT: ["FROM"],
  DELETE: ["FROM"],
  INSERT: ["INTO"],
  REPLACE: ["INTO"],
  UPSERT: ["INTO"],
  MERGE: ["INTO"],
  UPDATE: ["UPDATE"],
  TRUNCATE: ["TRUNCATE", "TABLE"],
  CREATE: ["TABLE", "VIEW", "ON"], // CREATE INDEX i ON t: the table after ON
  DROP: ["TABLE", "VIEW"],
  ALTER: ["TABLE"],
  COPY: ["COPY"],
  LOCK: ["TABLE", "TABLES"],
};

/** Modifiers that may sit between the keyword and the name (INSERT IGNORE INTO, DROP TABLE IF EXISTS). */
const SKIP_WORDS = new Set(["IF", "NOT", "EXISTS", "ONLY", "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "QUICK", "TEMPORARY", "TEMP", "UNLOGGED", "OR", "ROLLBACK", "ABORT", "FAIL", "REPLACE", "CONCURRENTLY", "UNIQUE", "TABLE"]);

export interface ParsedStatement {
  /** the statement keyword as written (no case change, semconv), undefined when none is known */
  operation?: string;
  /** the first collection (table) named, as written (schema prefix and quotes kept) */
  collection?: string;
}

/** db.operation.name and db.collection.name of a statement; either may be unknown. */
export function parseStatement(sql: string, d: Dialect = {}): ParsedStatement {
  const tokens = tokenize(sql, d).filter((t) => t.kind !== "space" && t.kind !== "comment");
  let i = 0;
  while (i < tokens.length && tokens[i]!.text === "(") i++;
  const first = tokens[i];
  if (!first || first.kind !== "word") return {};
  let opIndex = i;
  let op = first.text.toUpperCase();
  if (op !== "WITH" && !OPERATIONS.has(op)) return {};
  // WITH … AS (…) [, … AS (…)] <statement>: the statement after the common table expressions.
  if (op === "WITH") {
    let depth = 0;
    for (let j = i + 1; j < tokens.length; j++) {
      const t = tokens[j]!;
      if (t.text === "(") depth++;
      else if (t.text === ")") depth--;
      else if (depth === 0 && t.kind === "word" && ["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"].includes(t.text.toUpperCase())) {
        opIndex = j;
        op = t.text.toUpperCase();
        break;
      }
    }
    if (op === "WITH") return {};
  }
  const operation = tokens[opIndex]!.text;
  const after = COLLECTION_AFTER[op];
  if (!after) return { operation };
  // The first keyword of `after` at nesting depth 0 (a subquery's FROM is not the statement's).
  let depth = 0;
  for (let j = opIndex; j < tokens.length; j++) {
    const t = tokens[j]!;
    if (t.text === "(") depth++;
    else if (t.text === ")") depth--;
    if (depth !== 0 || t.kind !== "word" || !after.includes(t.text.toUpperCase())) continue;
    if (j === opIndex && !after.includes(op)) continue;
    let k = j + 1;
    while (k < tokens.length && tokens[k]!.kind === "word" && SKIP_WORDS.has(tokens[k]!.text.toUpperCase())) k++;
    const name = collectionAt(tokens, k);
    return name === undefined ? { operation } : { operation, collection: name };
  }
  return { operation };
}

/** A (possibly schema-qualified, possibly quoted) name starting at tokens[k]. */
function collectionAt(tokens: readonly Token[], k: number): string | undefined {
  const isName = (t: Token | undefined): boolean => t !== undefined && (t.kind === "word" || t.kind === "quoted");
  if (!isName(tokens[k])) return undefined; // a subquery, a function call's parenthesis, nothing
  let name = tokens[k]!.text;
  while (tokens[k + 1]?.text === "." && isName(tokens[k + 2])) {
    name += "." + tokens[k + 2]!.text;
    k += 2;
  }
  return name;
}
