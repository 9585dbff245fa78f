#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import Synchronization

/// Renders a ``LogRecord`` into bytes. The appender adds the line's newline; a layout renders none itself
/// (a pattern's `%n` adds one more, as in log4js).
///
/// Layouts run on the logging thread for every event: they append straight into the output buffer and keep
/// everything that can be computed once (compiled patterns, zone offset caches) in their own state.
public protocol LogLayout: Sendable {
    func render(_ record: borrowing LogRecord, into output: inout LogBuffer)
}

extension LogLayout {
    /// The record rendered as a string, for tests and tools.
    public func string(for record: LogRecord) -> String {
        var buffer = LogBuffer.acquireThreadBuffer()
        render(record, into: &buffer)
        let text = buffer.string
        buffer.releaseThreadBuffer()
        return text
    }
}

/// Facts about the process that layouts print (`%z`, `%h`, json's pid and hostname), fixed at start so tests can
/// pin them.
public struct LayoutEnvironment: Sendable, Hashable {
    public var pid: Int
    public var hostname: String

    public init(pid: Int, hostname: String) {
        self.pid = pid
        self.hostname = hostname
    }

    /// This process's pid and host name.
    public static var current: LayoutEnvironment {
        var buffer = [CChar](repeating: 0, count: 256)
        let name =
            gethostname(&buffer, buffer.count) == 0
            ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "localhost"
        return LayoutEnvironment(pid: Int(getpid()), hostname: name)
    }
}

/// Renders a timestamp in a zone with a ``DateFormat``; shared by the layouts.
///
/// Rendered dates are cached per thread for the millisecond they show (see ``ThreadScratch``): at a million lines
/// a second, a thousand lines share each rendering.
final class TimestampRenderer: Sendable {
    let format: DateFormat
    let offsets: ZoneOffsetCache
    let serial: Int

    init(format: DateFormat, timeZone: LogTimeZone) {
        self.format = format
        self.offsets = ZoneOffsetCache(timeZone)
        self.serial = rendererSerials.add(1, ordering: .relaxed).newValue
    }

    @inline(__always)
    func render(_ timestamp: LogTimestamp, into out: inout LogBuffer) {
        guard let scratch = out.scratch else {
            renderUncached(timestamp, into: &out)
            return
        }
        let milliseconds = Int32(timestamp.milliseconds)
        let keys = scratch.pointee.dateKeys
        var slot = -1
        for i in 0..<ThreadScratch.dateSlots where keys[i].renderer == serial {
            if keys[i].seconds == timestamp.seconds && keys[i].milliseconds == milliseconds {
                out.append(UnsafeBufferPointer(start: scratch.pointee.dateText + i * ThreadScratch.dateBytes, count: Int(keys[i].length)))
                return
            }
            slot = i
        }
        let start = out.count
        renderUncached(timestamp, into: &out)
        let length = out.count - start
        guard length <= ThreadScratch.dateBytes else { return }
        if slot < 0 {
            slot = scratch.pointee.nextSlot
            scratch.pointee.nextSlot = (slot + 1) % ThreadScratch.dateSlots
        }
        keys[slot] = ThreadScratch.DateKey(renderer: serial, seconds: timestamp.seconds, milliseconds: milliseconds, length: Int32(length))
        (scratch.pointee.dateText + slot * ThreadScratch.dateBytes).update(from: out.bytes(from: start).baseAddress!, count: length)
    }

    func renderUncached(_ timestamp: LogTimestamp, into out: inout LogBuffer) {
        format.render(CivilTime(timestamp, offsetSeconds: offsets.offset(at: timestamp.seconds)), into: &out)
    }
}

extension Logger.MetadataValue {
    /// The value as `%X{key}`, basic layouts and tools print it.
    var rendered: String {
        switch self {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        case .array, .dictionary: description
        }
    }
}

/// ` key=value` for each metadata entry, sorted by key, then ` error=…` when the event carries an error; values
/// quoted as logfmt quotes them when they need it.
func appendMetadataSuffix(_ metadata: Logger.Metadata, error: (any Error)?, into out: inout LogBuffer) {
    if !metadata.isEmpty { appendMetadataPairs(metadata, into: &out) }
    if let error {
        out.appendUTF8(" error=")
        appendLogfmtValue(String(describing: error), into: &out)
    }
}

/// ` key=value` for each entry, sorted by key (`%X` and the `basic` layout).
func appendMetadataPairs(_ metadata: Logger.Metadata, into out: inout LogBuffer) {
    forEachInKeyOrder(metadata) { key, value in
        out.append(UInt8(ascii: " "))
        out.appendUTF8(key)
        out.append(UInt8(ascii: "="))
        appendLogfmtValue(value.rendered, into: &out)
    }
}

/// Calls `body` with each entry in key order. The few pairs a line carries (up to 8) are ordered with no array
/// sorted (no allocation, no hashing): each round takes the least key above the last one given.
func forEachInKeyOrder(_ metadata: Logger.Metadata, _ body: (String, Logger.MetadataValue) -> Void) {
    guard metadata.count <= 8 else {
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { body(key, value) }
        return
    }
    var last: Logger.Metadata.Index?
    for _ in 0..<metadata.count {
        var next: Logger.Metadata.Index?
        for index in metadata.indices {
            let key = metadata[index].key
            if let last, key <= metadata[last].key { continue }
            if let chosen = next, metadata[chosen].key <= key { continue }
            next = index
        }
        guard let next else { return }
        body(metadata[next].key, metadata[next].value)
        last = next
    }
}

/// A value as logfmt writes it, so that a line can be read back into its pairs: as it is when it holds no space,
/// `=`, `"`, backslash or control character and is not empty; otherwise in double quotes, with `"` and `\` escaped
/// and newlines, tabs and returns written as `\n`, `\t`, `\r`.
func appendLogfmtValue(_ value: String, into out: inout LogBuffer) {
    func special(_ byte: UInt8) -> Bool { byte <= 0x20 || byte == 0x3D || byte == 0x22 || byte == 0x5C || byte == 0x7F }
    let needsQuotes =
        value.isEmpty || (value.utf8.withContiguousStorageIfAvailable { $0.contains(where: special) } ?? value.utf8.contains(where: special))
    guard needsQuotes else {
        out.appendUTF8(value)
        return
    }
    out.append(UInt8(ascii: "\""))
    for byte in value.utf8 {
        switch byte {
        case UInt8(ascii: "\""): out.appendUTF8("\\\"")
        case UInt8(ascii: "\\"): out.appendUTF8("\\\\")
        case UInt8(ascii: "\n"): out.appendUTF8("\\n")
        case UInt8(ascii: "\t"): out.appendUTF8("\\t")
        case UInt8(ascii: "\r"): out.appendUTF8("\\r")
        default: out.append(byte)
        }
    }
    out.append(UInt8(ascii: "\""))
}

/// A layout that renders every event as a pattern does (``equivalentPattern``), then, when it
/// ``printsMetadataSuffix``, the event's metadata and error as `basic` does (``appendMetadataSuffix(_:error:into:)``):
/// a writer renders its events from the event's parts with that pattern's program, with no ``LogRecord`` built.
protocol PatternEquivalentLayout: LogLayout {
    var equivalentPattern: PatternLayout? { get }
    var printsMetadataSuffix: Bool { get }
}

extension PatternLayout {
    /// A pattern of literals, the date, the level, the category and the message (no process facts), for
    /// ``PatternEquivalentLayout``; `nil` if it does not compile, which only makes events take the record's path.
    static func equivalent(_ pattern: String, timeZone: LogTimeZone) -> PatternLayout? {
        try? PatternLayout(pattern: pattern, timeZone: timeZone, environment: LayoutEnvironment(pid: 0, hostname: ""))
    }
}

/// log4js's `basic` layout: `[2024-01-01T09:00:00.000] [INFO] db.pool - message`, then the metadata as
/// ` key=value` pairs.
public struct BasicLayout: LogLayout, PatternEquivalentLayout {
    let timestamp: TimestampRenderer
    let equivalentPattern: PatternLayout?
    var printsMetadataSuffix: Bool { true }

    public init(timeZone: LogTimeZone = .local) {
        self.timestamp = TimestampRenderer(format: .iso8601, timeZone: timeZone)
        self.equivalentPattern = .equivalent("[%d{ISO8601}] [%p] %c - %m", timeZone: timeZone)
    }

    public func render(_ record: borrowing LogRecord, into out: inout LogBuffer) {
        renderPrefix(record, into: &out)
        out.appendUTF8(record.message)
        appendMetadataSuffix(record.metadata, error: record.error, into: &out)
    }

    @inline(__always)
    func renderPrefix(_ record: LogRecord, into out: inout LogBuffer) {
        out.append(UInt8(ascii: "["))
        timestamp.render(record.timestamp, into: &out)
        out.appendUTF8("] [")
        out.appendUTF8(record.level.name)
        out.appendUTF8("] ")
        out.appendUTF8(record.category)
        out.appendUTF8(" - ")
    }
}

/// log4js's `coloured` (`colored`) layout: `basic` with the timestamp, level and category in the level's colour.
public struct ColoredLayout: LogLayout, PatternEquivalentLayout {
    let basic: BasicLayout
    let equivalentPattern: PatternLayout?
    var printsMetadataSuffix: Bool { true }

    public init(timeZone: LogTimeZone = .local) {
        self.basic = BasicLayout(timeZone: timeZone)
        self.equivalentPattern = .equivalent("%[[%d{ISO8601}] [%p] %c - %]%m", timeZone: timeZone)
    }

    public func render(_ record: borrowing LogRecord, into out: inout LogBuffer) {
        out.appendUTF8(record.level.colour.start)
        basic.renderPrefix(record, into: &out)
        out.appendUTF8(LogColour.end)
        out.appendUTF8(record.message)
        appendMetadataSuffix(record.metadata, error: record.error, into: &out)
    }
}

/// log4js's `messagePassThrough` layout: the message alone.
public struct MessagePassThroughLayout: LogLayout, PatternEquivalentLayout {
    let equivalentPattern: PatternLayout?
    var printsMetadataSuffix: Bool { false }

    public init() {
        self.equivalentPattern = .equivalent("%m", timeZone: .utc)
    }

    public func render(_ record: borrowing LogRecord, into out: inout LogBuffer) {
        out.appendUTF8(record.message)
    }
}
