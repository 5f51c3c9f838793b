// The one error type an operator throws on purpose, and how any exception reads in one line.

/** Something the operator refuses, in words a person can act on: a bad setting in the
 * constructor, a record a map function will not take, state `restore` cannot read. */
export class OperatorError extends Error {
  constructor(message) {
    super(message);
    this.name = "OperatorError";
  }
}

/** `error` as the host reports it: an OperatorError's own message, an Error as
 * `Name: message` (the line a stack trace starts with), anything else as its text. */
export function oneLine(error) {
  if (error instanceof OperatorError) return error.message;
  if (error instanceof Error) return `${error.name}: ${error.message}`.replaceAll("\n", " ");
  return String(error).replaceAll("\n", " ");
}
