public import Logging

/// What a `log` task writes on each tick (heartbeats).
public struct LogMessageSpec: Sendable, Hashable {
    public var message: String
    public var level: Logger.Level

    public init(message: String, level: Logger.Level = .info) {
        self.message = message
        self.level = level
    }

    /// Reads swift-log's level names and log4js's (`WARN` is warning, `FATAL` critical), in any case.
    public static func level(named name: String) -> Logger.Level? {
        switch name.lowercased() {
        case "trace": .trace
        case "debug": .debug
        case "info": .info
        case "notice": .notice
        case "warn", "warning": .warning
        case "error": .error
        case "fatal", "critical": .critical
        default: nil
        }
    }
}
