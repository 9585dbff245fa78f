#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CShims
public import Logging

/// A point in time with nanosecond precision, as seconds since the Unix epoch.
public struct LogTimestamp: Sendable, Hashable, Comparable {
    public var seconds: Int64
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// The wall clock now (`CLOCK_REALTIME`), read as a log line reads it: from the CPU's time-stamp counter between
    /// readings of the kernel's clock at most a millisecond apart, where the kernel itself keeps time with that
    /// counter (CShims' Clock.c); a step of the clock shows within a millisecond.
    @inline(__always)
    public static func now() -> LogTimestamp {
        let (seconds, nanoseconds) = octopus_realtime_nanoseconds().quotientAndRemainder(dividingBy: 1_000_000_000)
        if nanoseconds < 0 { return LogTimestamp(seconds: seconds - 1, nanoseconds: Int32(nanoseconds + 1_000_000_000)) }
        return LogTimestamp(seconds: seconds, nanoseconds: Int32(nanoseconds))
    }

    public var milliseconds: Int { Int(nanoseconds / 1_000_000) }

    public static func < (lhs: LogTimestamp, rhs: LogTimestamp) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }
}

/// Where a ``LogSystem`` gets the time of each event. Tests use `.fixed` or `.custom` to get exact output.
public enum LogClock: Sendable {
    case system
    case fixed(LogTimestamp)
    case custom(@Sendable () -> LogTimestamp)

    @inline(__always)
    public func now() -> LogTimestamp {
        switch self {
        case .system: LogTimestamp.now()
        case .fixed(let t): t
        case .custom(let f): f()
        }
    }
}

/// One log event as the appenders see it: the level already resolved, the metadata already merged.
public struct LogRecord: Sendable {
    public var level: LogLevel
    public var category: String
    public var message: String
    /// The handler's, the metadata provider's and the call's metadata, merged in that order.
    public var metadata: Logger.Metadata
    public var error: (any Error)?
    public var timestamp: LogTimestamp
    public var file: String
    public var function: String
    public var line: UInt

    public init(
        level: LogLevel,
        category: String,
        message: String,
        metadata: Logger.Metadata = [:],
        error: (any Error)? = nil,
        timestamp: LogTimestamp,
        file: String = "",
        function: String = "",
        line: UInt = 0
    ) {
        self.level = level
        self.category = category
        self.message = message
        self.metadata = metadata
        self.error = error
        self.timestamp = timestamp
        self.file = file
        self.function = function
        self.line = line
    }
}

/// What a pattern reads of an event besides its metadata: the handler hands these to the layouts that need nothing
/// else, without building a ``LogRecord``.
struct EventParts {
    /// The level's value (what the level and category print is in the layout's program, or taken from the record).
    var levelValue: Int
    /// The message's UTF-8 bytes, read in place (valid while the parts are rendered).
    var message: UnsafeBufferPointer<UInt8>
    var timestamp: LogTimestamp
    var file: String
    var function: String
    var line: UInt
}

/// An event's merged metadata (the handler's, the provider's, the call's) and error, for layouts that print them
/// (`basic` and `coloured` after the line, patterns with `%X`); made only when the event has either.
struct EventSuffix {
    var metadata: Logger.Metadata
    var error: (any Error)?
}
