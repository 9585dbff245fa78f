/// The bytes of one rendered line: a growable buffer written through a pointer, so a layout's many small appends
/// cost a store each, with no copy-on-write or bounds checks per byte. Not copyable: it owns its memory.
public struct LogBuffer: ~Copyable {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    /// The number of bytes written so far.
    public private(set) var count: Int
    /// Whether `base` is this buffer's own memory (else it is the thread scratch's).
    @usableFromInline var owned: Bool
    /// The thread's scratch, when rendering through it (gives access to the date cache).
    var scratch: UnsafeMutablePointer<ThreadScratch>?

    public init(capacity: Int = 256) {
        self.capacity = Swift.max(16, capacity)
        self.base = .allocate(capacity: self.capacity)
        self.count = 0
        self.owned = true
        self.scratch = nil
    }

    /// A buffer over the thread scratch's line memory.
    init(borrowing scratch: UnsafeMutablePointer<ThreadScratch>) {
        self.base = scratch.pointee.line
        self.capacity = scratch.pointee.lineCapacity
        self.count = 0
        self.owned = false
        self.scratch = scratch
    }

    /// A buffer over `capacity` bytes at `memory`, which its owner keeps (a writer's output); `scratch`, the
    /// thread's, gives rendering its date cache. Grown past `capacity`, it continues in memory of its own.
    init(over memory: UnsafeMutablePointer<UInt8>, capacity: Int, scratch: UnsafeMutablePointer<ThreadScratch>) {
        self.base = memory
        self.capacity = capacity
        self.count = 0
        self.owned = false
        self.scratch = scratch
    }

    deinit { if owned { base.deallocate() } }

    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(count + extra) }
    }

    @inline(never)
    mutating func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        if owned { base.deallocate() }
        owned = true
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    public mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always)
    public mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        (base + count).update(from: source, count: bytes.count)
        count += bytes.count
    }

    @inline(__always)
    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }

    /// Appends the UTF-8 bytes of `text` (read in place for native strings: no copy of the string).
    @inline(__always)
    public mutating func appendUTF8<Text: StringProtocol>(_ text: Text) {
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { append($0) }
        if done == nil {
            for byte in text.utf8 { append(byte) }
        }
    }

    /// `value` in decimal, zero-padded to `width` digits (more digits when it needs them).
    @inline(__always)
    public mutating func appendDecimal(_ value: Int, width: Int = 1) {
        if value < 0 {
            append(UInt8(ascii: "-"))
            appendDecimal(value == Int.min ? Int.max : -value, width: width)
            return
        }
        if width == 2 && value < 100 {
            reserve(2)
            base[count] = UInt8(truncatingIfNeeded: 48 + value / 10)
            base[count + 1] = UInt8(truncatingIfNeeded: 48 + value % 10)
            count += 2
            return
        }
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        let total = Swift.max(digits, width)
        reserve(total)
        var position = count + total - 1
        var remaining = value
        for _ in 0..<digits {
            base[position] = UInt8(truncatingIfNeeded: 48 + remaining % 10)
            remaining /= 10
            position -= 1
        }
        while position >= count {
            base[position] = UInt8(ascii: "0")
            position -= 1
        }
        count += total
    }

    /// The bytes from `start` to the end.
    func bytes(from start: Int = 0) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base + start, count: count - start)
    }

    /// Drops the bytes from `start` to the end.
    mutating func truncate(to start: Int) {
        count = Swift.min(count, start)
    }

    /// Removes `length` bytes at `start`, moving the rest down.
    mutating func remove(at start: Int, length: Int) {
        UnsafeMutableRawPointer(base + start).copyMemory(from: base + start + length, byteCount: count - start - length)
        count -= length
    }

    /// Inserts `length` copies of `byte` at `start`, moving the rest up.
    mutating func insert(_ byte: UInt8, count length: Int, at start: Int) {
        reserve(length)
        UnsafeMutableRawPointer(base + start + length).copyMemory(from: base + start, byteCount: count - start)
        (base + start).update(repeating: byte, count: length)
        count += length
    }

    /// The bytes as a string (for tests and tools).
    public var string: String { String(decoding: bytes(), as: UTF8.self) }
}
