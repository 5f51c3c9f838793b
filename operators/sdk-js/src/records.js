// The contract's data in JavaScript: a batch of records as the host packed it, the output an
// operator gives back, and keyed state. Packing and unpacking happen here, once per call: a
// record's data is a view into the batch's bytes (no copy), and an output is encoded straight
// into one growing buffer.

/** The watermark before any event time was seen (the smallest 64-bit integer, as a Number). */
export const NO_WATERMARK = Number(-(2n ** 63n));
/** The key of instance-wide state (such as a watermark): the host gives every instance a copy. */
export const INSTANCE_KEY = "";
/** The tag of a rejection that refuses a record as late (every window it belongs to fired). */
export const LATE = "late: ";
/** The tag of a rejection that reports a kept record some of whose windows fired without it. */
export const PARTLY_LATE = "partly late: ";

const decoder = new TextDecoder("utf-8", { fatal: false });
const strict = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** Records of one shard, in order, with the host's processing time and watermark (ms since
 * the Unix epoch, as Numbers). */
export class Batch {
  constructor(shardId, nowMs, watermarkMs, bytes, keyLens, dataLens, arrivalTimesMs) {
    if (keyLens.length !== dataLens.length || keyLens.length !== arrivalTimesMs.length) {
      throw new RangeError("a batch needs one key length, data length and arrival time per record");
    }
    this.shardId = shardId;
    this.nowMs = nowMs;
    this.watermarkMs = watermarkMs;
    this.bytes = bytes;
    this.keyLens = keyLens;
    this.dataLens = dataLens;
    this.arrivalTimesMs = arrivalTimesMs;
  }

  get length() {
    return this.keyLens.length;
  }

  /** The batch's bytes as one string when they are all ASCII (an offset in it is then the
   * same offset in `bytes`), else undefined. For reading records in place, by sticky regular
   * expressions at each record's offsets (`keyLens`, `dataLens`), without a string each. */
  ascii() {
    let text;
    try {
      text = strict.decode(this.bytes);
    } catch {
      return undefined;
    }
    return text.length === this.bytes.length ? text : undefined;
  }

  /** The records in order: `{ index, partitionKey, data, arrivalTimeMs }`, `data` a
   * Uint8Array viewing the batch's bytes. */
  *records() {
    const { bytes, keyLens, dataLens, arrivalTimesMs } = this;
    let at = 0;
    for (let index = 0; index < keyLens.length; index++) {
      const keyEnd = at + keyLens[index];
      const dataEnd = keyEnd + dataLens[index];
      yield {
        index,
        partitionKey: decoder.decode(bytes.subarray(at, keyEnd)),
        data: bytes.subarray(keyEnd, dataEnd),
        arrivalTimeMs: Number(BigInt.asIntN(64, BigInt(arrivalTimesMs[index]))),
      };
      at = dataEnd;
    }
  }
}

/** Bytes appended to one buffer that grows by doubling, with the length of each part. */
class Packed {
  constructor() {
    this.buffer = new Uint8Array(1024);
    this.length = 0;
  }

  reserve(extra) {
    if (this.length + extra <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + extra) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  /** Append `value` (a string, written as UTF-8, or bytes); its length in bytes. */
  append(value) {
    if (typeof value === "string") {
      this.reserve(value.length * 3);
      const { written } = encoder.encodeInto(value, this.buffer.subarray(this.length));
      this.length += written;
      return written;
    }
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
    return value.length;
  }

  bytes() {
    return this.buffer.subarray(0, this.length);
  }
}

/** 32-bit lengths appended to a typed array that grows by doubling. Handed to the host as it
 * is: componentize-js copies a typed array into the guest's memory whole, where a plain array
 * would be lowered element by element, each checked, in interpreted JavaScript. */
class Lengths {
  constructor(from = []) {
    this.array = new Uint32Array(Math.max(64, from.length));
    this.array.set(from);
    this.length = from.length;
  }

  push(value) {
    if (this.length === this.array.length) {
      const grown = new Uint32Array(this.array.length * 2);
      grown.set(this.array);
      this.array = grown;
    }
    this.array[this.length++] = value;
  }

  /** The lengths pushed so far (a view, not a copy). */
  view() {
    return this.array.subarray(0, this.length);
  }
}

/** Pairs `(key, value)` out of packed bytes and two length lists. */
function* unpack(bytes, keyLens, valueLens) {
  let at = 0;
  for (let i = 0; i < keyLens.length; i++) {
    const keyEnd = at + keyLens[i];
    const end = keyEnd + valueLens[i];
    yield [decoder.decode(bytes.subarray(at, keyEnd)), bytes.subarray(keyEnd, end)];
    at = end;
  }
}

/** What one call produced: records (partition key and data), rejected input records with
 * their reasons, and the latest event time accepted. */
export class Output {
  constructor() {
    this.packed = new Packed();
    this.keyLengths = new Lengths();
    this.dataLengths = new Lengths();
    /** `[index, reason]` of each input record refused. */
    this.rejected = [];
    /** The latest event time reported with `observeEventTime` (undefined: none). */
    this.eventTimeMs = undefined;
  }

  /** Emit a record with this partition key and data (a string is written as UTF-8). */
  emit(partitionKey, data) {
    this.keyLengths.push(this.packed.append(partitionKey));
    this.dataLengths.push(this.packed.append(data));
  }

  /** Refuse input record `index` of the current batch: the host sends it to the dead-letter
   * destination with `reason`. */
  reject(index, reason) {
    this.rejected.push([index, reason]);
  }

  /** Refuse input record `index` as late (every window it belongs to was emitted). */
  rejectLate(index, reason) {
    this.rejected.push([index, LATE + reason]);
  }

  /** Report input record `index`, which was kept, as partly late. */
  reportPartlyLate(index, reason) {
    this.rejected.push([index, PARTLY_LATE + reason]);
  }

  /** An input record with event time `timeMs` was accepted: the host folds the latest into
   * the watermark of the batch's shard. */
  observeEventTime(timeMs) {
    if (this.eventTimeMs === undefined || timeMs > this.eventTimeMs) this.eventTimeMs = timeMs;
  }

  get length() {
    return this.keyLengths.length;
  }

  /** The length in bytes of each record's partition key (a Uint32Array). */
  get keyLens() {
    return this.keyLengths.view();
  }

  /** The length in bytes of each record's data (a Uint32Array). */
  get dataLens() {
    return this.dataLengths.view();
  }

  /** The keys and data back to back, as the contract carries them. */
  bytes() {
    return this.packed.bytes();
  }

  /** The output records as `[partitionKey, data]`, in order. */
  records() {
    return [...unpack(this.bytes(), this.keyLens, this.dataLens)];
  }

  /** Append all of `other`'s records and rejections (and its event time). */
  extend(other) {
    for (const [key, data] of other.records()) this.emit(key, data);
    this.rejected.push(...other.rejected);
    if (other.eventTimeMs !== undefined) this.observeEventTime(other.eventTimeMs);
  }
}

/** An operator's state, one entry per grouping key, each bytes in a format of the operator's
 * choice (see `codec`). The entry of INSTANCE_KEY is instance-wide: `restore` may see several. */
export class KeyedStates {
  constructor(bytes = new Uint8Array(), keyLens = [], stateLens = []) {
    let total = 0;
    for (let i = 0; i < keyLens.length; i++) total += keyLens[i] + (stateLens[i] ?? NaN);
    if (keyLens.length !== stateLens.length || total !== bytes.length) {
      throw new RangeError("keyed state whose lengths do not match its bytes");
    }
    this.packed = new Packed();
    this.packed.append(bytes);
    this.keyLengths = new Lengths(keyLens);
    this.stateLengths = new Lengths(stateLens);
  }

  /** Add the state of one key. */
  push(key, state) {
    this.keyLengths.push(this.packed.append(key));
    this.stateLengths.push(this.packed.append(state));
  }

  get length() {
    return this.keyLengths.length;
  }

  /** The length in bytes of each entry's key (a Uint32Array). */
  get keyLens() {
    return this.keyLengths.view();
  }

  /** The length in bytes of each entry's state (a Uint32Array). */
  get stateLens() {
    return this.stateLengths.view();
  }

  /** `[key, state]` of each entry, in order. */
  [Symbol.iterator]() {
    return unpack(this.bytes(), this.keyLens, this.stateLens);
  }

  bytes() {
    return this.packed.bytes();
  }

  /** The same entries sorted by key, as the harness returns a snapshot. */
  sorted() {
    const out = new KeyedStates();
    for (const [key, state] of [...this].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
      out.push(key, state);
    }
    return out;
  }
}
