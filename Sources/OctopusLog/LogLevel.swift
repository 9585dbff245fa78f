public import Logging

/// A log4js level: a name, an order value, and a colour for the coloured layouts.
///
/// The built-in levels and their values are log4js's:
/// `ALL < TRACE < DEBUG < INFO < WARN < ERROR < FATAL < MARK < OFF`. Custom levels come from the
/// configuration's `levels` section and sort by their value among these.
public struct LogLevel: Sendable, Hashable, CustomStringConvertible {
    /// The upper-case name, as printed by `%p`.
    public var name: String
    /// The order value; a category's level lets through events whose value is at least its own.
    public var value: Int
    /// The colour used by `colored` and `%[ … %]`.
    public var colour: LogColour

    public init(name: String, value: Int, colour: LogColour) {
        self.name = name.uppercased()
        self.value = value
        self.colour = colour
    }

    public var description: String { name }

    public static let all = LogLevel(name: "ALL", value: Int.min, colour: .grey)
    public static let trace = LogLevel(name: "TRACE", value: 5000, colour: .blue)
    public static let debug = LogLevel(name: "DEBUG", value: 10000, colour: .cyan)
    public static let info = LogLevel(name: "INFO", value: 20000, colour: .green)
    public static let warn = LogLevel(name: "WARN", value: 30000, colour: .yellow)
    public static let error = LogLevel(name: "ERROR", value: 40000, colour: .red)
    public static let fatal = LogLevel(name: "FATAL", value: 50000, colour: .magenta)
    public static let mark = LogLevel(name: "MARK", value: 9_007_199_254_740_992, colour: .grey)
    public static let off = LogLevel(name: "OFF", value: Int.max, colour: .grey)

    /// The built-in levels in order.
    public static let builtIn: [LogLevel] = [.all, .trace, .debug, .info, .warn, .error, .fatal, .mark, .off]
}

/// The colours log4js knows, with their ANSI codes (log4js's own: red is the bright 91).
public enum LogColour: String, Sendable, CaseIterable {
    case white, grey, black, blue, cyan, green, magenta, red, yellow

    /// The escape sequence that starts the colour.
    public var start: String {
        switch self {
        case .white: "\u{1B}[37m"
        case .grey, .black: "\u{1B}[90m"
        case .blue: "\u{1B}[34m"
        case .cyan: "\u{1B}[36m"
        case .green: "\u{1B}[32m"
        case .magenta: "\u{1B}[35m"
        case .red: "\u{1B}[91m"
        case .yellow: "\u{1B}[33m"
        }
    }

    /// The escape sequence that ends it (default foreground).
    public static let end = "\u{1B}[39m"
}

/// The levels in force: the built-in ones plus the configuration's custom levels, and how swift-log's seven
/// levels map onto them.
///
/// The mapping from swift-log: `trace → TRACE`, `debug → DEBUG`, `info → INFO`, `notice → NOTICE` when the
/// configuration defines a level named `NOTICE` (else `INFO`), `warning → WARN`, `error → ERROR`,
/// `critical → FATAL`.
public struct LogLevelTable: Sendable {
    /// Every level, sorted by value.
    public private(set) var levels: [LogLevel]
    /// The level each swift-log level maps to, indexed by ``Logger/Level`` order (trace … critical).
    let fromSwiftLog: [LogLevel]

    /// The built-in levels with `custom` added (a custom level with a built-in name replaces it).
    public init(custom: [LogLevel] = []) {
        var byName: [String: LogLevel] = [:]
        for level in LogLevel.builtIn { byName[level.name] = level }
        for level in custom { byName[level.name] = level }
        self.levels = byName.values.sorted { $0.value < $1.value }
        let info = byName["INFO"] ?? .info
        self.fromSwiftLog = [
            byName["TRACE"] ?? .trace, byName["DEBUG"] ?? .debug, info, byName["NOTICE"] ?? info,
            byName["WARN"] ?? .warn, byName["ERROR"] ?? .error, byName["FATAL"] ?? .fatal,
        ]
    }

    /// The level named `name` (any case), if defined.
    public func level(named name: String) -> LogLevel? {
        let upper = name.uppercased()
        return levels.first { $0.name == upper }
    }

    /// The Octopus level a swift-log level maps to.
    @inline(__always)
    public func level(for swiftLogLevel: Logger.Level) -> LogLevel {
        fromSwiftLog[swiftLogLevel.ordinal]
    }

    /// The lowest swift-log level whose mapped level passes `threshold`, or `nil` when none does (OFF, MARK).
    func swiftLogThreshold(for threshold: Int) -> Logger.Level? {
        Logger.Level.allCases.first { fromSwiftLog[$0.ordinal].value >= threshold }
    }
}

extension Logger.Level {
    /// The level with this ordinal (0 trace … 6 critical); `critical` beyond. (`allCases` would build an array on
    /// every call, and this is read on every log call.)
    @inline(__always)
    init(ordinal: Int) {
        switch ordinal {
        case 0: self = .trace
        case 1: self = .debug
        case 2: self = .info
        case 3: self = .notice
        case 4: self = .warning
        case 5: self = .error
        default: self = .critical
        }
    }

    @inline(__always)
    var ordinal: Int {
        switch self {
        case .trace: 0
        case .debug: 1
        case .info: 2
        case .notice: 3
        case .warning: 4
        case .error: 5
        case .critical: 6
        }
    }
}
