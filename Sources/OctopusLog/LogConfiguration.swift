public import OctopusConfig
import Foundation

/// The logging configuration: log4js's `appenders`, `categories` and `levels`.
///
/// ```swift
/// let configuration = try LogConfiguration.load(directory: "config", environment: "production")
/// let configuration = try LogConfiguration(yaml: """
///     log:
///       appenders: { out: { type: stdout } }
///       categories: { default: { appenders: [out], level: info } }
///     """)
/// ```
public struct LogConfiguration: Sendable {
    public var appenders: [String: AppenderConfiguration]
    public var categories: [String: CategoryConfiguration]
    /// Custom levels, added to (or replacing) the built-in ones.
    public var levels: [LogLevel]
    /// What was accepted but deserves a change (deprecated keys), with key paths. `config check` prints them.
    public var warnings: [ConfigIssue] = []

    public init(
        appenders: [String: AppenderConfiguration],
        categories: [String: CategoryConfiguration],
        levels: [LogLevel] = []
    ) {
        self.appenders = appenders
        self.categories = categories
        self.levels = levels
    }

    /// Every problem of this configuration that does not depend on the file system, each with its key path under
    /// `log`.
    public func validate() -> [ConfigIssue] { validate(declared: nil) }

    /// What makes two file appenders one file: the same path, and with `alwaysIncludePattern` the same pattern (the
    /// hot file's name then carries the period).
    struct FileWriterKey: Hashable {
        var path: String
        var pattern: String?
    }

    /// `declared`: every appender name the configuration holds, those refused for their own errors included, so that
    /// a refused appender gives its own error and no "not defined" one where it is named.
    func validate(declared: Set<String>?) -> [ConfigIssue] {
        let defined = declared ?? Set(appenders.keys)
        var issues: [ConfigIssue] = []
        func add(_ path: String, _ message: String) { issues.append(ConfigIssue(path: path, message: message)) }
        if let root = categories["default"] {
            if root.level == nil { add("log.categories.default.level", "missing key \"level\" at log.categories.default (the default category needs a level)") }
            if (root.appenders ?? []).isEmpty {
                add("log.categories.default.appenders", "missing key \"appenders\" at log.categories.default (the default category needs at least one appender)")
            }
        } else {
            add("log.categories.default", "missing category \"default\" at log.categories (every configuration needs one)")
        }
        for name in categories.keys.sorted() {
            guard let category = categories[name] else { continue }
            for (index, appender) in (category.appenders ?? []).enumerated() where !defined.contains(appender) {
                add(
                    "log.categories.\(name).appenders[\(index)]",
                    "category \"\(name)\" names appender \"\(appender)\", which is not defined at log.categories.\(name).appenders[\(index)]"
                        + suggestionSuffix(appender, among: Array(appenders.keys))
                )
            }
            if name != "default", !category.inherit, (category.appenders ?? []).isEmpty {
                add("log.categories.\(name).appenders", "category \"\(name)\" has \"inherit: false\" and no appenders at log.categories.\(name)")
            }
        }
        for name in appenders.keys.sorted() {
            guard let target = appenders[name]?.filterTarget else { continue }
            let path = "log.appenders.\(name).appender"
            if !defined.contains(target) {
                add(path, "appender \"\(name)\" passes events to appender \"\(target)\", which is not defined at \(path)"
                    + suggestionSuffix(target, among: Array(appenders.keys)))
                continue
            }
            var seen: [String] = [name]
            var next: String? = target
            while let current = next {
                if seen.contains(current) {
                    add(path, "appender \"\(name)\" passes events in a cycle (\((seen + [current]).joined(separator: " → "))) at \(path)")
                    break
                }
                seen.append(current)
                next = appenders[current]?.filterTarget
            }
        }
        // Appenders writing one file share one writer: they must write and roll it the same way. The same code
        // refuses at load time (`config check`) and before a log system opens anything.
        var byFile: [FileWriterKey: (name: String, writer: WriterOptions, rotation: RotationOptions?)] = [:]
        for name in appenders.keys.sorted() {
            guard let appender = appenders[name], let (key, rotation) = appender.fileWriter else { continue }
            guard let first = byFile[key] else {
                byFile[key] = (name, appender.writer, rotation)
                continue
            }
            guard first.writer != appender.writer || first.rotation != rotation else { continue }
            var message = "appenders \"\(first.name)\" and \"\(name)\" both write \(key.path) but "
                + (first.rotation != rotation ? "roll it differently" : "with other writer options (bufferSize, overflow, fsync, mode, flags)")
                + " at log.appenders.\(name); one file is written and rolled one way: give each its own filename, or the same options"
            if first.rotation?.pattern != rotation?.pattern, !(rotation?.alwaysIncludePattern ?? false) {
                message += " (with alwaysIncludePattern: true, each date pattern names files of its own)"
            }
            add("log.appenders.\(name)", message)
        }
        return issues
    }

    /// The appender that writes `path` (a file name as configured, or one a multiFile appender makes) and how that
    /// file rolls; `nil` when no appender writes it. (`octopus tail` reads a file as its appender wrote it.)
    public func appender(writing path: String) -> (appender: AppenderConfiguration, rotation: RotationOptions?)? {
        let wanted = URL(fileURLWithPath: path).standardizedFileURL.path
        for name in appenders.keys.sorted() {
            guard let appender = appenders[name] else { continue }
            if let (key, rotation) = appender.fileWriter, key.path == wanted { return (appender, rotation) }
            if case .multiFile(var options) = appender.kind {
                options.base = URL(fileURLWithPath: options.base).standardizedFileURL.path
                if options.value(forPath: wanted) != nil { return (appender, options.rotation) }
            }
        }
        return nil
    }

    private func suggestionSuffix(_ name: String, among names: [String]) -> String {
        if let suggestion = ConfigObjectReader.suggestion(for: name, among: names) { return "; did you mean \"\(suggestion)\"?" }
        return ""
    }
}

/// A category: the appenders it adds and the level it lets through.
public struct CategoryConfiguration: Sendable {
    /// The category's own appenders; with `inherit` (the default) its parent's are added.
    public var appenders: [String]?
    /// Its level; without one it takes its parent's.
    public var level: LogLevel?
    /// Whether the parent category's appenders are added to this one's.
    public var inherit: Bool

    public init(appenders: [String]? = nil, level: LogLevel? = nil, inherit: Bool = true) {
        self.appenders = appenders
        self.level = level
        self.inherit = inherit
    }
}

/// How an appender renders events.
public enum LayoutConfiguration: Sendable {
    case basic(timeZone: LogTimeZone)
    case colored(timeZone: LogTimeZone)
    case messagePassThrough
    case pattern(String, tokens: [String: PatternToken], timeZone: LogTimeZone)
    case json(timeZone: LogTimeZone)
    /// A layout written in code.
    case custom(any LogLayout)

    func make(environment: LayoutEnvironment) throws(PatternError) -> any LogLayout {
        switch self {
        case .basic(let zone): BasicLayout(timeZone: zone)
        case .colored(let zone): ColoredLayout(timeZone: zone)
        case .messagePassThrough: MessagePassThroughLayout()
        case .pattern(let pattern, let tokens, let zone):
            try PatternLayout(pattern: pattern, tokens: tokens, timeZone: zone, environment: environment)
        case .json(let zone): JSONLayout(timeZone: zone, environment: environment)
        case .custom(let layout): layout
        }
    }
}

/// The `file` appender's options (log4js's names): a file that rolls by size when `maxLogSize` is set, to
/// `app.log.1` (the newest) … `app.log.<backups>`.
public struct FileAppenderOptions: Sendable, Hashable {
    public var filename: String
    /// Bytes after which the file rolls; `nil` never rolls.
    public var maxLogSize: Int?
    public var backups: Int
    public var compress: Bool
    public var keepFileExt: Bool
    public var fileNameSep: String
    /// Rolled files older than this many days are removed.
    public var maxDays: Int?
    /// The oldest rolled files are removed while all of them together exceed this many bytes.
    public var maxTotalSize: Int?
    /// gzip level of `compress`, 1 to 9.
    public var compressionLevel: Int

    public init(
        filename: String,
        maxLogSize: Int? = nil,
        backups: Int = 5,
        compress: Bool = false,
        keepFileExt: Bool = false,
        fileNameSep: String = ".",
        maxDays: Int? = nil,
        maxTotalSize: Int? = nil,
        compressionLevel: Int = 6
    ) {
        self.filename = filename
        self.maxLogSize = maxLogSize
        self.backups = backups
        self.compress = compress
        self.keepFileExt = keepFileExt
        self.fileNameSep = fileNameSep
        self.maxDays = maxDays
        self.maxTotalSize = maxTotalSize
        self.compressionLevel = compressionLevel
    }

    /// How the file rolls, or `nil` when it never does.
    public var rotation: RotationOptions? {
        guard maxLogSize != nil else { return nil }
        return RotationOptions(
            maxLogSize: maxLogSize, keepFileExt: keepFileExt, fileNameSep: fileNameSep, backups: backups,
            compress: compress, compressionLevel: compressionLevel, maxDays: maxDays, maxTotalSize: maxTotalSize
        )
    }
}

/// The `dateFile` appender's options (log4js's names): a file that rolls at each period of `pattern` to
/// `app.log.2024-01-01` (the date is the period the file covers), and within a period by size when `maxLogSize`
/// is set (`app.log.2024-01-01.1`, the newest first).
public struct DateFileAppenderOptions: Sendable, Hashable {
    public var filename: String
    public var pattern: String
    public var alwaysIncludePattern: Bool
    public var keepFileExt: Bool
    public var fileNameSep: String
    /// How many rolled files to keep (log4js's default: 1).
    public var numBackups: Int
    public var compress: Bool
    public var maxLogSize: Int?
    public var timeZone: LogTimeZone
    public var maxDays: Int?
    public var maxTotalSize: Int?
    public var compressionLevel: Int

    public init(
        filename: String,
        pattern: String = "yyyy-MM-dd",
        alwaysIncludePattern: Bool = false,
        keepFileExt: Bool = false,
        fileNameSep: String = ".",
        numBackups: Int = 1,
        compress: Bool = false,
        maxLogSize: Int? = nil,
        timeZone: LogTimeZone = .local,
        maxDays: Int? = nil,
        maxTotalSize: Int? = nil,
        compressionLevel: Int = 6
    ) {
        self.filename = filename
        self.pattern = pattern
        self.alwaysIncludePattern = alwaysIncludePattern
        self.keepFileExt = keepFileExt
        self.fileNameSep = fileNameSep
        self.numBackups = numBackups
        self.compress = compress
        self.maxLogSize = maxLogSize
        self.timeZone = timeZone
        self.maxDays = maxDays
        self.maxTotalSize = maxTotalSize
        self.compressionLevel = compressionLevel
    }

    /// How the file rolls.
    public var rotation: RotationOptions {
        RotationOptions(
            maxLogSize: maxLogSize, pattern: pattern, alwaysIncludePattern: alwaysIncludePattern,
            keepFileExt: keepFileExt, fileNameSep: fileNameSep, backups: numBackups, compress: compress,
            compressionLevel: compressionLevel, maxDays: maxDays, maxTotalSize: maxTotalSize, timeZone: timeZone
        )
    }
}

/// log4js's `multiFile` appender's options: one file per value of a property of the event, named
/// `<base>/<value><extension>`, each written and rolled as a `file` appender's.
public struct MultiFileAppenderOptions: Sendable, Hashable {
    /// The directory of the files.
    public var base: String
    /// What tells the files apart: `categoryName` (the logger's label), `level` (its name), `pid` (the writing
    /// process), or else a metadata key. Events without it are not written by this appender (as in log4js).
    public var property: String
    /// Added to each value to make the file name (log4js's `extension`: `".log"`).
    public var fileExtension: String
    /// Seconds without an event after which a file is closed (it reopens at the next event); `nil` keeps every file
    /// open until shutdown.
    public var timeout: Double?
    /// How each file rolls, or `nil` when it never does.
    public var rotation: RotationOptions?

    public init(base: String, property: String, fileExtension: String = ".log", timeout: Double? = nil, rotation: RotationOptions? = nil) {
        self.base = base
        self.property = property
        self.fileExtension = fileExtension
        self.timeout = timeout
        self.rotation = rotation
    }
}

/// One appender of the configuration.
public struct AppenderConfiguration: Sendable {
    public enum Kind: Sendable {
        case stdout
        case stderr
        /// log4js's `console`; writes to stdout.
        case console
        case file(FileAppenderOptions)
        case dateFile(DateFileAppenderOptions)
        case multiFile(MultiFileAppenderOptions)
        case logLevelFilter(appender: String, level: LogLevel, maxLevel: LogLevel)
        case categoryFilter(appender: String, exclude: [String])
        case noLogFilter(appender: String, exclude: [String])
        case recording(limit: Int)
    }

    public var kind: Kind
    public var layout: LayoutConfiguration
    public var writer: WriterOptions
    /// Events at or above this level are written before the logging call returns.
    public var syncLevel: LogLevel?

    public init(
        _ kind: Kind,
        layout: LayoutConfiguration? = nil,
        writer: WriterOptions = WriterOptions(),
        syncLevel: LogLevel? = nil
    ) {
        self.kind = kind
        self.layout = layout ?? Self.defaultLayout(for: kind)
        self.writer = writer
        self.syncLevel = syncLevel
    }

    /// log4js's defaults: coloured for the terminal streams, basic for files.
    static func defaultLayout(for kind: Kind) -> LayoutConfiguration {
        switch kind {
        case .stdout, .stderr, .console: .colored(timeZone: .local)
        default: .basic(timeZone: .local)
        }
    }

    /// The appender a filter passes events to.
    var filterTarget: String? {
        switch kind {
        case .logLevelFilter(let target, _, _), .categoryFilter(let target, _), .noLogFilter(let target, _): target
        default: nil
        }
    }

    /// The file this appender writes (its key: path and, for per-period names, pattern) and how it rolls.
    var fileWriter: (LogConfiguration.FileWriterKey, RotationOptions?)? {
        switch kind {
        case .file(let options):
            return (.init(path: URL(fileURLWithPath: options.filename).standardizedFileURL.path), options.rotation)
        case .dateFile(let options):
            let pattern = options.alwaysIncludePattern ? options.pattern : nil
            return (.init(path: URL(fileURLWithPath: options.filename).standardizedFileURL.path, pattern: pattern), options.rotation)
        default:
            return nil
        }
    }
}
