import Foundation
public import OctopusConfig

extension LogConfiguration {
    /// Reads a configuration from YAML or JSON text: either a whole Octopus configuration with a `log:` section,
    /// or a log4js configuration object (`appenders`, `categories`, `levels` at the top), pasted as it is.
    public init(yaml text: String, source: String = "<string>") throws(ConfigurationError) {
        let value = try ConfigLoader.parse(text, source: source)
        if value["log"] == nil, value["appenders"] != nil || value["categories"] != nil {
            try self.init(section: value, path: "log")
        } else {
            try self.init(value, requireSection: true)
        }
    }

    /// Reads the `log` section of a whole configuration value.
    public init(_ configuration: ConfigValue, requireSection: Bool = true) throws(ConfigurationError) {
        guard let section = configuration["log"] else {
            if requireSection {
                throw ConfigurationError([ConfigIssue(path: "log", message: "missing key \"log\" at the top level (the logging configuration)", origin: configuration.origin)])
            }
            self.init(appenders: [:], categories: [:])
            return
        }
        try self.init(section: section, path: "log")
    }

    /// Loads `config.default.*` overlaid by `config.<environment>.*` from `directory` and reads its `log` section.
    /// The environment defaults to `OCTOPUS_ENV`, else `local`.
    public static func load(directory: String = "config", environment: String? = nil) throws(ConfigurationError) -> LogConfiguration {
        try LogConfiguration(ConfigLoader.load(directory: directory, environment: environment))
    }

    /// The keys the `log` section may hold. log4js's `pm2`, `pm2InstanceVar` and `disableClustering` are accepted
    /// (and have no effect: Octopus's own process model coordinates processes).
    static let sectionKeys = ["appenders", "categories", "levels", "pm2", "pm2InstanceVar", "disableClustering"]

    init(section: ConfigValue, path: String) throws(ConfigurationError) {
        let issues = ConfigIssueCollector()
        guard let log = ConfigObjectReader(section, path: path, allowedKeys: Self.sectionKeys, issues: issues) else {
            throw ConfigurationError(issues.issues)
        }
        let customLevels = Self.readLevels(log, issues: issues)
        let table = LogLevelTable(custom: customLevels)
        var appenders: [String: AppenderConfiguration] = [:]
        var declared: Set<String> = []
        if let section = log.object("appenders", allowedKeys: nil, required: true) {
            for (name, value) in section.entries {
                declared.insert(name)
                if let appender = Self.readAppender(name: name, value, path: section.path(of: name), table: table, issues: issues) {
                    appenders[name] = appender
                }
            }
        }
        var categories: [String: CategoryConfiguration] = [:]
        if let section = log.object("categories", allowedKeys: nil, required: true) {
            for (name, value) in section.entries {
                guard let category = ConfigObjectReader(value, path: section.path(of: name), allowedKeys: ["appenders", "level", "inherit", "enableCallStack"], issues: issues) else { continue }
                let level = Self.readLevel(category, "level", table: table)
                categories[name] = CategoryConfiguration(
                    appenders: category.stringList("appenders"),
                    level: level,
                    inherit: category.bool("inherit") ?? true
                )
            }
        }
        self.init(appenders: appenders, categories: categories, levels: customLevels)
        self.warnings = issues.warnings
        let known = Set(issues.issues.map(\.path))
        for issue in validate(declared: declared) where !known.contains(issue.path) {
            issues.add(ConfigIssue(path: issue.path, message: issue.message, origin: Self.origin(of: issue.path, in: section)))
        }
        try issues.throwIfAny()
    }

    /// The origin of the value at a `log.`-rooted key path, or its nearest present parent.
    private static func origin(of path: String, in section: ConfigValue) -> ConfigOrigin? {
        var value = section
        var origin = section.origin
        for part in path.split(separator: ".").dropFirst() {
            let key = part.split(separator: "[").first.map(String.init) ?? String(part)
            guard let next = value[key] else { break }
            value = next
            origin = next.origin ?? origin
        }
        return origin
    }

    static func readLevels(_ log: ConfigObjectReader, issues: ConfigIssueCollector) -> [LogLevel] {
        guard let section = log.object("levels", allowedKeys: nil) else { return [] }
        var levels: [LogLevel] = []
        for (name, value) in section.entries {
            let path = section.path(of: name)
            guard name.range(of: "^[A-Za-z][A-Za-z0-9_]*$", options: .regularExpression) != nil else {
                issues.add(at: path, "level name \"\(name)\" at \(section.path) must start with a letter and hold only letters, digits and _", origin: value.origin)
                continue
            }
            guard let level = ConfigObjectReader(value, path: path, allowedKeys: ["value", "colour", "color"], issues: issues) else { continue }
            guard let number = readLevelValue(level) else { continue }
            var colour = LogColour.grey
            if let text = level.string("colour") ?? level.string("color") {
                if let known = LogColour(rawValue: text.lowercased()) {
                    colour = known
                } else {
                    level.report(level.has("colour") ? "colour" : "color", "unknown colour \"\(text)\" at \(level.path(of: "colour")); colours are \(LogColour.allCases.map(\.rawValue).joined(separator: ", "))")
                }
            }
            levels.append(LogLevel(name: name, value: number, colour: colour))
        }
        return levels
    }

    /// A level's `value`: any whole number. Beyond 64 bits (log4js takes any JavaScript number; `Number.MAX_VALUE - 1`
    /// is found in the wild) it is clamped, which keeps its order against every other level short of another
    /// clamped one.
    static func readLevelValue(_ level: ConfigObjectReader) -> Int? {
        guard let raw = level.raw("value") else {
            level.issues.add(at: level.path(of: "value"), "missing key \"value\" at \(level.path) (a whole number)", origin: level.value.origin)
            return nil
        }
        switch raw.kind {
        case .int(let i): return i
        case .double(let d) where d.isFinite && d.rounded() == d:
            if d >= 9.2e18 { return Int.max - 1 }
            if d <= -9.2e18 { return Int.min + 1 }
            return Int(d)
        case .double(let d):
            level.report("value", "level value \(d) at \(level.path(of: "value")) is not a whole number; levels are ordered by whole numbers")
            return nil
        default:
            level.report("value", "expected a whole number at \(level.path(of: "value")), found \(raw.kindName)")
            return nil
        }
    }

    static func readLevel(_ object: ConfigObjectReader, _ key: String, table: LogLevelTable) -> LogLevel? {
        guard let name = object.string(key) else { return nil }
        if let level = table.level(named: name) { return level }
        object.report(key, "unknown level \"\(name)\" at \(object.path(of: key)); levels are \(table.levels.map(\.name).joined(separator: ", "))")
        return nil
    }

    /// A size in bytes: a whole number, or one followed by `K`, `M` or `G` (1024-based, any case), as log4js reads
    /// `maxLogSize`.
    public static func parseSize(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let bytes = Int(trimmed), bytes >= 0 { return bytes }
        guard let unit = trimmed.last?.uppercased() else { return nil }
        let multiplier: Int
        switch unit {
        case "K": multiplier = 1 << 10
        case "M": multiplier = 1 << 20
        case "G": multiplier = 1 << 30
        default: return nil
        }
        guard let number = Int(trimmed.dropLast().trimmingCharacters(in: .whitespaces)), number >= 0 else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    static func readSize(_ object: ConfigObjectReader, _ key: String, minimum: Int = 0) -> Int? {
        guard let raw = object.raw(key) else { return nil }
        let text: String
        switch raw.kind {
        case .int(let i): text = String(i)
        case .string(let s): text = s
        default:
            object.report(key, "expected a size at \(object.path(of: key)), found \(raw.kindName)")
            return nil
        }
        guard let size = parseSize(text), size >= minimum else {
            object.report(key, "malformed size \"\(text)\" at \(object.path(of: key)); expected a number of bytes, or a number followed by K, M or G\(minimum > 0 ? " (at least \(minimum))" : "")")
            return nil
        }
        return size
    }

    static let appenderTypes = [
        "stdout", "stderr", "console", "file", "fileSync", "dateFile", "logLevelFilter", "categoryFilter", "noLogFilter",
        "recording", "multiFile",
    ]
    static let writerKeys = ["bufferSize", "overflow", "syncLevel"]
    /// Keys both file appenders take.
    static let commonFileKeys = [
        "filename", "maxLogSize", "compress", "keepFileExt", "fileNameSep", "mode", "flags", "encoding", "fsync",
        "maxDays", "maxTotalSize", "compressionLevel",
    ]
    /// log4js hands a `file` appender's options to its rolling stream, which also takes `numBackups` (winning over
    /// `backups`) and the date-rolling keys.
    static let fileKeys = commonFileKeys + ["backups", "numBackups", "pattern", "alwaysIncludePattern", "timezone"]
    static let fileSyncKeys = ["filename", "maxLogSize", "backups", "mode", "flags", "encoding"]
    static let dateFileKeys = commonFileKeys + ["pattern", "alwaysIncludePattern", "numBackups", "daysToKeep", "timezone"]
    /// multiFile: its own keys and a `file` appender's, but for the file name, which each value makes.
    static let multiFileKeys = ["base", "property", "extension", "timeout"] + fileKeys.filter { $0 != "filename" }

    static func readAppender(name: String, _ value: ConfigValue, path: String, table: LogLevelTable, issues: ConfigIssueCollector) -> AppenderConfiguration? {
        guard value.objectPairs != nil else {
            issues.add(at: path, "expected an object at \(path), found \(value.kindName)", origin: value.origin)
            return nil
        }
        guard case .string(let type)? = value["type"]?.kind else {
            issues.add(at: path + ".type", "missing key \"type\" at \(path) (one of \(appenderTypes.joined(separator: ", ")))", origin: value.origin)
            return nil
        }
        var allowed = ["type"]
        switch type {
        case "stdout", "stderr", "console": allowed += ["layout"] + writerKeys
        case "file": allowed += ["layout"] + writerKeys + fileKeys
        case "fileSync": allowed += ["layout", "syncLevel"] + fileSyncKeys
        case "dateFile": allowed += ["layout"] + writerKeys + dateFileKeys
        case "multiFile": allowed += ["layout"] + writerKeys + multiFileKeys
        case "logLevelFilter": allowed += ["appender", "level", "maxLevel"]
        case "categoryFilter", "noLogFilter": allowed += ["appender", "exclude"]
        case "recording": allowed += ["layout", "maxRecords"]
        default:
            var message = "appender \"\(name)\" has type \"\(type)\", which Octopus does not have, at \(path).type"
            if let suggestion = ConfigObjectReader.suggestion(for: type, among: appenderTypes) {
                message += "; did you mean \"\(suggestion)\"?"
            } else {
                message += "; types are \(appenderTypes.joined(separator: ", "))"
            }
            issues.add(at: path + ".type", message, origin: value["type"]?.origin ?? value.origin)
            return nil
        }
        guard let object = ConfigObjectReader(value, path: path, allowedKeys: allowed, issues: issues) else { return nil }
        let layout = object.has("layout") ? readLayout(object) : nil

        var writer = WriterOptions()
        if let size = readSize(object, "bufferSize", minimum: 1024) { writer.bufferSize = size }
        if let overflow = object.string("overflow") {
            if let policy = OverflowPolicy(rawValue: overflow) {
                writer.overflow = policy
            } else {
                object.report("overflow", "unknown overflow policy \"\(overflow)\" at \(object.path(of: "overflow")); expected block or drop")
            }
        }
        let syncLevel = readLevel(object, "syncLevel", table: table)

        let kind: AppenderConfiguration.Kind
        switch type {
        case "stdout": kind = .stdout
        case "stderr": kind = .stderr
        case "console": kind = .console
        case "file", "fileSync":
            let common = readFileCommon(object, writer: &writer)
            kind = readRollingFile(object, common: common, issues: issues)
            if type == "fileSync" {
                // log4js's fileSync writes each event before the call returns: Octopus's syncLevel ALL does that.
                if syncLevel == nil {
                    issues.warn(at: path + ".type", "appender \"\(name)\" at \(path) is a fileSync appender: Octopus writes it as a file appender with syncLevel ALL (every event written before the call returns)", origin: value["type"]?.origin)
                }
                return AppenderConfiguration(kind, layout: layout, writer: writer, syncLevel: syncLevel ?? .all)
            }
        case "dateFile":
            let common = readFileCommon(object, writer: &writer)
            var options = DateFileAppenderOptions(
                filename: common.filename, keepFileExt: common.keepFileExt, fileNameSep: common.fileNameSep,
                compress: common.compress, maxLogSize: common.maxLogSize, maxDays: common.maxDays,
                maxTotalSize: common.maxTotalSize, compressionLevel: common.compressionLevel
            )
            if let pattern = readPattern(object) { options.pattern = pattern }
            options.alwaysIncludePattern = object.bool("alwaysIncludePattern") ?? false
            if let count = readCount(object, "numBackups") {
                options.numBackups = count
            } else if let count = readCount(object, "daysToKeep") {
                options.numBackups = count
                issues.warn(at: object.path(of: "daysToKeep"), "\"daysToKeep\" at \(object.path(of: "daysToKeep")) is deprecated (it counts files, not days): use \"numBackups\", or \"maxDays\" for an age", origin: object.raw("daysToKeep")?.origin)
            }
            if let zone = readTimeZone(object) { options.timeZone = zone }
            kind = .dateFile(options)
        case "multiFile":
            kind = .multiFile(readMultiFile(object, writer: &writer, issues: issues))
        case "logLevelFilter":
            let target = object.string("appender", required: true) ?? ""
            if !object.has("level") { object.report("level", "missing key \"level\" at \(path)") }
            let level = readLevel(object, "level", table: table) ?? .all
            let maxLevel = readLevel(object, "maxLevel", table: table) ?? .fatal
            kind = .logLevelFilter(appender: target, level: level, maxLevel: maxLevel)
        case "categoryFilter":
            kind = .categoryFilter(appender: object.string("appender", required: true) ?? "", exclude: object.stringList("exclude") ?? [])
        case "noLogFilter":
            let patterns = object.stringList("exclude", required: true) ?? []
            for (index, pattern) in patterns.enumerated() where (try? NSRegularExpression(pattern: pattern)) == nil {
                issues.add(at: object.path(of: "exclude") + "[\(index)]", "invalid regular expression \"\(pattern)\" at \(object.path(of: "exclude"))[\(index)]", origin: object.raw("exclude")?.origin)
            }
            kind = .noLogFilter(appender: object.string("appender", required: true) ?? "", exclude: patterns)
        default:
            var limit = 100_000
            if let n = object.int("maxRecords") {
                if n < 1 { object.report("maxRecords", "maxRecords must be at least 1 at \(object.path(of: "maxRecords"))") } else { limit = n }
            }
            kind = .recording(limit: limit)
        }
        return AppenderConfiguration(kind, layout: layout, writer: writer, syncLevel: syncLevel)
    }

    /// A `file` appender's rolling (log4js's rolling stream): by size, or by date when it has a `pattern`.
    static func readRollingFile(_ object: ConfigObjectReader, common: FileCommon, issues: ConfigIssueCollector) -> AppenderConfiguration.Kind {
        // log4js: `numBackups` wins over `backups` (its rolling stream reads it first); 5 when neither is set.
        let backups = readCount(object, "numBackups") ?? readCount(object, "backups") ?? 5
        if object.has("pattern") {
            // A file appender with a date pattern rolls by date (and by size with maxLogSize), as log4js's does.
            var options = DateFileAppenderOptions(
                filename: common.filename, keepFileExt: common.keepFileExt, fileNameSep: common.fileNameSep,
                numBackups: backups, compress: common.compress, maxLogSize: common.maxLogSize,
                maxDays: common.maxDays, maxTotalSize: common.maxTotalSize, compressionLevel: common.compressionLevel
            )
            if let pattern = readPattern(object) { options.pattern = pattern }
            options.alwaysIncludePattern = object.bool("alwaysIncludePattern") ?? false
            if let zone = readTimeZone(object) { options.timeZone = zone }
            return .dateFile(options)
        }
        for key in ["alwaysIncludePattern", "timezone"] where object.has(key) {
            issues.warn(at: object.path(of: key), "\"\(key)\" at \(object.path(of: key)) has no effect without \"pattern\" (the file rolls by size only)", origin: object.raw(key)?.origin)
        }
        return .file(FileAppenderOptions(
            filename: common.filename, maxLogSize: common.maxLogSize, backups: backups, compress: common.compress,
            keepFileExt: common.keepFileExt, fileNameSep: common.fileNameSep, maxDays: common.maxDays,
            maxTotalSize: common.maxTotalSize, compressionLevel: common.compressionLevel
        ))
    }

    /// log4js's `multiFile`: `base`, `property`, `extension`, `timeout` (milliseconds) and a `file` appender's
    /// options for each file.
    static func readMultiFile(_ object: ConfigObjectReader, writer: inout WriterOptions, issues: ConfigIssueCollector) -> MultiFileAppenderOptions {
        let base = object.string("base", required: true) ?? ""
        var isDirectory: ObjCBool = false
        if object.raw("base") != nil, base.isEmpty {
            object.report("base", "empty directory name at \(object.path(of: "base")); use \".\" for the working directory")
        } else if FileManager.default.fileExists(atPath: base, isDirectory: &isDirectory), !isDirectory.boolValue {
            object.report("base", "base \"\(base)\" at \(object.path(of: "base")) is a file; base names the directory the files are written in")
        }
        let property = object.string("property", required: true) ?? ""
        if object.raw("property") != nil, property.isEmpty {
            object.report("property", "empty property at \(object.path(of: "property")); use categoryName, level, pid or a metadata key")
        }
        var fileExtension = ""
        if object.raw("extension") == nil {
            object.report("extension", "missing key \"extension\" at \(object.path) (log4js would name the files <value>undefined); use \".log\", or \"\" for none")
        } else if let text = object.string("extension") {
            if text.contains("/") { object.report("extension", "extension \"\(text)\" at \(object.path(of: "extension")) must not hold \"/\"") } else { fileExtension = text }
        }
        var timeout: Double?
        if let milliseconds = readCount(object, "timeout", minimum: 1) { timeout = Double(milliseconds) / 1000 }
        let common = readFileCommon(object, filename: base, writer: &writer)
        let rotation: RotationOptions? =
            switch readRollingFile(object, common: common, issues: issues) {
            case .file(let options): options.rotation
            case .dateFile(let options): options.rotation
            default: nil
            }
        return MultiFileAppenderOptions(
            base: base, property: property, fileExtension: fileExtension, timeout: timeout, rotation: rotation)
    }

    /// A date pattern that names periods.
    static func readPattern(_ object: ConfigObjectReader) -> String? {
        guard let pattern = object.string("pattern") else { return nil }
        guard RollPeriod(pattern: pattern, timeZone: .utc) != nil else {
            object.report("pattern", "date pattern \"\(pattern)\" at \(object.path(of: "pattern")) has no date or time field (yyyy, MM, dd, hh, mm, ss) or has a zone offset (O)")
            return nil
        }
        return pattern
    }

    struct FileCommon {
        var filename = ""
        var maxLogSize: Int?
        var compress = false
        var keepFileExt = false
        var fileNameSep = "."
        var maxDays: Int?
        var maxTotalSize: Int?
        var compressionLevel = 6
    }

    /// The keys `file` and `dateFile` share; the writer keys among them go into `writer`.
    /// `filename`: the file's name where the appender does not read it from `filename` (multiFile's files).
    static func readFileCommon(_ object: ConfigObjectReader, filename: String? = nil, writer: inout WriterOptions) -> FileCommon {
        var common = FileCommon()
        common.filename = filename ?? object.string("filename", required: true) ?? ""
        if filename == nil, object.raw("filename") != nil, common.filename.isEmpty { object.report("filename", "empty file name at \(object.path(of: "filename"))") }
        var isDirectory: ObjCBool = false
        if filename != nil {
            // Not one file's name.
        } else if common.filename.hasSuffix("/") || common.filename.hasSuffix("/.") || common.filename.hasSuffix("/..")
            || (FileManager.default.fileExists(atPath: common.filename, isDirectory: &isDirectory) && isDirectory.boolValue)
        {
            object.report("filename", "filename \"\(common.filename)\" at \(object.path(of: "filename")) names a directory; name the file in it (for example \"\((common.filename as NSString).standardizingPath)/app.log\")")
        }
        common.maxLogSize = readSize(object, "maxLogSize", minimum: 1)
        common.compress = object.bool("compress") ?? false
        common.keepFileExt = object.bool("keepFileExt") ?? false
        common.fileNameSep = object.string("fileNameSep") ?? "."
        if common.fileNameSep.isEmpty || common.fileNameSep.contains("/") {
            object.report("fileNameSep", "fileNameSep at \(object.path(of: "fileNameSep")) must be a non-empty text without \"/\"")
        }
        common.maxDays = readCount(object, "maxDays", minimum: 1)
        common.maxTotalSize = readSize(object, "maxTotalSize", minimum: 1)
        if let level = object.int("compressionLevel") {
            if (1...9).contains(level) { common.compressionLevel = level } else {
                object.report("compressionLevel", "compressionLevel at \(object.path(of: "compressionLevel")) must be 1 to 9")
            }
        }
        writer.fsync = object.bool("fsync") ?? false
        if let mode = readMode(object) { writer.mode = mode }
        if let flags = object.string("flags") {
            switch flags {
            case "a", "a+", "as", "as+": break
            case "w", "w+": writer.truncate = true  // a fresh file at each start
            default:
                object.report("flags", "flags \"\(flags)\" at \(object.path(of: "flags")) is not supported; use \"a\" (append, the default) or \"w\" (emptied at each start)")
            }
        }
        if let encoding = object.string("encoding"), !["utf8", "utf-8"].contains(encoding.lowercased()) {
            object.report("encoding", "encoding \"\(encoding)\" at \(object.path(of: "encoding")) is not supported; Octopus writes UTF-8")
        }
        return common
    }

    /// The `timezone` key: `local`, `UTC` or an IANA name.
    static func readTimeZone(_ object: ConfigObjectReader) -> LogTimeZone? {
        guard let name = object.string("timezone") else { return nil }
        guard let zone = LogTimeZone(parsing: name) else {
            object.report("timezone", "unknown time zone \"\(name)\" at \(object.path(of: "timezone")); use local, UTC or an IANA name such as Europe/Paris")
            return nil
        }
        return zone
    }

    /// A whole number of at least `minimum`.
    static func readCount(_ object: ConfigObjectReader, _ key: String, minimum: Int = 0) -> Int? {
        guard let count = object.int(key) else { return nil }
        guard count >= minimum else {
            object.report(key, "\(key) must be \(minimum) or more at \(object.path(of: key))")
            return nil
        }
        return count
    }

    /// A file mode: an integer (as log4js's JSON gives it, `384` for 0o600), or a string of octal digits (`"0640"`).
    static func readMode(_ object: ConfigObjectReader) -> UInt32? {
        guard let raw = object.raw("mode") else { return nil }
        var mode: Int?
        switch raw.kind {
        case .int(let i): mode = i
        case .string(let s):
            let digits = s.hasPrefix("0o") ? String(s.dropFirst(2)) : s
            mode = Int(digits, radix: 8)
        default: break
        }
        guard let mode, (0...0o777).contains(mode) else {
            object.report("mode", "invalid file mode at \(object.path(of: "mode")); expected permission bits such as \"0640\" or 416")
            return nil
        }
        return UInt32(mode)
    }

    static let layoutTypes = ["basic", "colored", "coloured", "messagePassThrough", "pattern", "json"]

    static func readLayout(_ appender: ConfigObjectReader) -> LayoutConfiguration? {
        guard let raw = appender.raw("layout") else { return nil }
        let path = appender.path(of: "layout")
        guard case .string(let type)? = raw["type"]?.kind else {
            if raw.objectPairs == nil {
                appender.report("layout", "expected an object at \(path), found \(raw.kindName)")
            } else {
                appender.issues.add(at: path + ".type", "missing key \"type\" at \(path) (one of \(layoutTypes.joined(separator: ", ")))", origin: raw.origin)
            }
            return nil
        }
        var allowed = ["type", "timezone"]
        switch type {
        case "pattern": allowed += ["pattern", "tokens"]
        case "basic", "colored", "coloured", "json": break
        case "messagePassThrough", "dummy": allowed = ["type"]
        default:
            var message = "unknown layout type \"\(type)\" at \(path).type"
            if let suggestion = ConfigObjectReader.suggestion(for: type, among: layoutTypes) {
                message += "; did you mean \"\(suggestion)\"?"
            } else {
                message += "; types are \(layoutTypes.joined(separator: ", "))"
            }
            appender.issues.add(at: path + ".type", message, origin: raw["type"]?.origin ?? raw.origin)
            return nil
        }
        guard let layout = ConfigObjectReader(raw, path: path, allowedKeys: allowed, issues: appender.issues) else { return nil }
        let zone = readTimeZone(layout) ?? .local
        switch type {
        case "basic": return .basic(timeZone: zone)
        case "colored", "coloured": return .colored(timeZone: zone)
        case "json": return .json(timeZone: zone)
        case "messagePassThrough", "dummy": return .messagePassThrough
        default:
            let pattern = layout.string("pattern") ?? PatternLayout.defaultPattern
            var tokens: [String: PatternToken] = [:]
            if let section = layout.object("tokens", allowedKeys: nil) {
                for (name, value) in section.entries {
                    switch value.kind {
                    case .string(let s): tokens[name] = .constant(s)
                    case .int(let i): tokens[name] = .constant(String(i))
                    case .double(let d): tokens[name] = .constant(String(d))
                    case .bool(let b): tokens[name] = .constant(String(b))
                    default:
                        section.report(name, "expected a string at \(section.path(of: name)), found \(value.kindName) (functions as tokens are set in code)")
                    }
                }
            }
            do {
                _ = try PatternLayout(pattern: pattern, tokens: tokens, timeZone: zone)
            } catch {
                layout.report("pattern", "invalid pattern at \(layout.path(of: "pattern")): \(error)")
                return nil
            }
            return .pattern(pattern, tokens: tokens, timeZone: zone)
        }
    }
}
