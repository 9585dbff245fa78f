public import Logging

/// A logger's direct call: the same logger (its label, level, metadata and provider; the same categories, appenders
/// and lines), called past swift-log's event. `Logger.info("… \(n)")` builds a `String` for the message (a heap
/// allocation for all but the shortest) and a `LogEvent`, and asks the handler for its level through two dynamic
/// calls, before Octopus does any work: about 270–300 ns a line on the development machine, more than spdlog spends
/// on its whole line. A direct call interpolates the message into memory of its own on the stack and hands its bytes
/// to Octopus's handler: no allocation, and about half of `Logger.info`'s time (see README, Benchmarks).
///
/// ```swift
/// let log = logger.direct                       // once, as a `Logger` value is kept
/// log.info("user \(id) logged in from \(address)")
/// ```
///
/// Made from a `Logger`, it is that logger as it was then (a copy, as a `Logger` value is). For a logger whose
/// handler is not Octopus's (another backend, a test handler), every call goes to the logger as `Logger.log` with
/// the message as a string, so code that uses it works with any swift-log backend.
public struct DirectLogger: Sendable {
    @usableFromInline
    enum Target: Sendable {
        case octopus(OctopusLogHandler)
        case other(Logger)
    }

    @usableFromInline
    let target: Target

    public init(_ logger: Logger) {
        if let handler = logger.handler as? OctopusLogHandler {
            target = .octopus(handler)
        } else {
            target = .other(logger)
        }
    }

    /// Logs `message` at `level`: nothing is evaluated (neither the message nor the metadata) when the level is off.
    /// A line with metadata (the call's, the logger's or a provider's) is logged as `Logger.log` logs it.
    /// (Inlinable, so that the message is built in the caller's frame and read where it is built.)
    @inlinable
    public func log(
        level: Logger.Level, _ message: @autoclosure () -> DirectMessage,
        metadata: @autoclosure () -> Logger.Metadata? = nil, file: String = #fileID, function: String = #function,
        line: UInt = #line
    ) {
        switch target {
        case .octopus(let handler):
            guard handler.isEnabled(level) else { return }
            message().withBytes { bytes in
                handler.logDirect(level: level, bytes, metadata: metadata(), file: file, function: function, line: line)
            }
        case .other(let logger):
            logger.log(
                level: level, "\(message().string)", metadata: metadata(), file: file, function: function, line: line)
        }
    }

    @inlinable
    public func trace(
        _ message: @autoclosure () -> DirectMessage, metadata: @autoclosure () -> Logger.Metadata? = nil,
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(level: .trace, message(), metadata: metadata(), file: file, function: function, line: line)
    }

    @inlinable
    public func debug(
        _ message: @autoclosure () -> DirectMessage, metadata: @autoclosure () -> Logger.Metadata? = nil,
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(level: .debug, message(), metadata: metadata(), file: file, function: function, line: line)
    }

    @inlinable
    public func info(
        _ message: @autoclosure () -> DirectMessage, metadata: @autoclosure () -> Logger.Metadata? = nil,
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(level: .info, message(), metadata: metadata(), file: file, function: function, line: line)
    }

    @inlinable
    public func notice(
        _ message: @autoclosure () -> DirectMessage, metadata: @autoclosure () -> Logger.Metadata? = nil,
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(level: .notice, message(), metadata: metadata(), file: file, function: function, line: line)
    }

    @inlinable
    public func warning(
        _ message: @autoclosure () -> DirectMessage, metadata: @autoclosure () -> Logger.Metadata? = nil,
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(level: .warning, message(), metadata: metadata(), file: file, function: function, line: line)
    }

    @inlinable
    public func error(
        _ message: @autoclosure () -> DirectMessage, metadata: @autoclosure () -> Logger.Metadata? = nil,
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(level: .error, message(), metadata: metadata(), file: file, function: function, line: line)
    }

    @inlinable
    public func critical(
        _ message: @autoclosure () -> DirectMessage, metadata: @autoclosure () -> Logger.Metadata? = nil,
        file: String = #fileID, function: String = #function, line: UInt = #line
    ) {
        log(level: .critical, message(), metadata: metadata(), file: file, function: function, line: line)
    }
}

extension Logger {
    /// This logger's direct call (see ``DirectLogger``); make it once and keep it, as the logger is kept.
    public var direct: DirectLogger { DirectLogger(self) }
}

/// A direct call's message, interpolated into the value's own bytes: up to ``inlineCapacity`` bytes on the stack,
/// longer messages in an array (an allocation only for those). Integers are written as digits in place; strings are
/// copied from their UTF-8; any other value as `String(describing:)` gives it.
public struct DirectMessage: ExpressibleByStringInterpolation, Sendable {
    /// The bytes a message holds without an allocation.
    public static let inlineCapacity = 256

    /// 256 bytes.
    @usableFromInline
    typealias Inline = (
        SIMD32<UInt8>, SIMD32<UInt8>, SIMD32<UInt8>, SIMD32<UInt8>, SIMD32<UInt8>, SIMD32<UInt8>, SIMD32<UInt8>,
        SIMD32<UInt8>
    )

    public struct StringInterpolation: StringInterpolationProtocol, Sendable {
        @usableFromInline
        var inline: Inline = (.zero, .zero, .zero, .zero, .zero, .zero, .zero, .zero)
        @usableFromInline
        var count = 0
        /// The whole message once it outgrew `inline`.
        @usableFromInline
        var spilled: [UInt8]?

        @inlinable
        public init(literalCapacity: Int, interpolationCount: Int) {}

        @inlinable
        mutating func append(_ bytes: UnsafeRawBufferPointer) {
            guard bytes.count > 0 else { return }
            if spilled == nil && count + bytes.count <= DirectMessage.inlineCapacity {
                let at = count
                withUnsafeMutableBytes(of: &inline) { inline in
                    (inline.baseAddress.unsafelyUnwrapped + at).copyMemory(
                        from: bytes.baseAddress.unsafelyUnwrapped, byteCount: bytes.count)
                }
                count += bytes.count
            } else {
                spill(bytes)
            }
        }

        @usableFromInline @inline(never)
        mutating func spill(_ bytes: UnsafeRawBufferPointer) {
            if spilled == nil {
                var all: [UInt8] = []
                all.reserveCapacity(max(2 * DirectMessage.inlineCapacity, count + bytes.count))
                let count = self.count
                withUnsafeBytes(of: inline) { all.append(contentsOf: $0.prefix(count)) }
                spilled = all
            }
            spilled!.append(contentsOf: bytes)
            count += bytes.count
        }

        @inlinable
        public mutating func appendLiteral(_ literal: String) {
            appendInterpolation(literal)
        }

        @inlinable
        public mutating func appendInterpolation(_ value: String) {
            var value = value
            value.withUTF8 { append(UnsafeRawBufferPointer($0)) }
        }

        /// Its UTF-8 read in place (no `String` made of it).
        @inlinable
        public mutating func appendInterpolation(_ value: Substring) {
            var value = value
            value.withUTF8 { append(UnsafeRawBufferPointer($0)) }
        }

        /// In decimal, as `String(value)` writes it.
        @inlinable
        public mutating func appendInterpolation<Value: BinaryInteger>(_ value: Value) {
            guard let value = Int64(exactly: value) else { return appendInterpolation(String(value)) }
            var magnitude = value.magnitude
            var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: 20 digits and a sign
            withUnsafeMutableBytes(of: &digits) { raw in
                var position = raw.count
                repeat {
                    position -= 1
                    raw[position] = UInt8(truncatingIfNeeded: 48 &+ magnitude % 10)
                    magnitude /= 10
                } while magnitude > 0
                if value < 0 {
                    position -= 1
                    raw[position] = UInt8(ascii: "-")
                }
                append(UnsafeRawBufferPointer(rebasing: raw[position...]))
            }
        }

        /// Any other value, as `String(describing:)` writes it.
        @inlinable
        public mutating func appendInterpolation<Value>(_ value: Value) {
            appendInterpolation(String(describing: value))
        }
    }

    @usableFromInline
    let interpolation: StringInterpolation

    @inlinable
    public init(stringInterpolation: StringInterpolation) {
        interpolation = stringInterpolation
    }

    @inlinable
    public init(stringLiteral value: String) {
        var interpolation = StringInterpolation(literalCapacity: 0, interpolationCount: 0)
        interpolation.appendLiteral(value)
        self.interpolation = interpolation
    }

    /// Calls `body` with the message's UTF-8 bytes.
    @inlinable
    func withBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        if let spilled = interpolation.spilled { return spilled.withUnsafeBufferPointer(body) }
        let count = interpolation.count
        return withUnsafeBytes(of: interpolation.inline) { raw in
            body(UnsafeBufferPointer(start: raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self), count: count))
        }
    }

    /// The message as a string.
    public var string: String { withBytes { String(decoding: $0, as: UTF8.self) } }
}

extension OctopusLogHandler {
    /// Whether a line of `level` passes this logger's threshold (for a direct call, before its message is built).
    @usableFromInline
    func isEnabled(_ level: Logger.Level) -> Bool {
        withNode { passes(level, node: $0) }
    }

    /// A direct call's line, its level checked: for a line with no metadata to merge, the category's writers from
    /// the message's bytes; otherwise the event `Logger.log` would have made.
    @usableFromInline
    func logDirect(
        level: Logger.Level, _ message: UnsafeBufferPointer<UInt8>, metadata: Logger.Metadata?, file: String,
        function: String, line: UInt
    ) {
        withNode { node in
            if let writers = node.eventWriters, !hasMetadataToMerge, metadata?.isEmpty ?? true {
                let parts = EventParts(
                    levelValue: node.levelValues[level.ordinal], message: message, timestamp: node.clock.now(),
                    file: file, function: function, line: line)
                for index in writers.indices { writers[index].append(parts, level: level, suffix: nil) }
                return
            }
            log(
                event: LogEvent(
                    level: level, message: "\(String(decoding: message, as: UTF8.self))", metadata: metadata,
                    source: nil, file: file, function: function, line: line))
        }
    }
}
