import Logging
public import OctopusConfig

/// The `schedule:` section: tasks declared in configuration, of two built-in kinds, `command` and `log`.
///
/// ```yaml
/// schedule:
///   shutdownTimeout: 10s           # how long running tasks get to finish at a stop
///   tasks:
///     heartbeat: { kind: log, interval: 30s, type: all, message: alive }
///     cleanup:
///       kind: command
///       cron: "0 30 3 * * *"
///       cronOptions: { tz: Europe/Berlin }
///       command: find
///       args: [logs, -name, "*.tmp", -delete]
///       timeout: 5m
/// ```
public struct ScheduleConfiguration: Sendable {
    public var tasks: [ConfiguredTask]
    public var shutdownTimeout: Duration

    public init(tasks: [ConfiguredTask] = [], shutdownTimeout: Duration = .seconds(10)) {
        self.tasks = tasks
        self.shutdownTimeout = shutdownTimeout
    }

    /// The keys every task takes, whatever its kind.
    static let scheduleKeys = [
        "kind", "interval", "cron", "cronOptions", "type", "immediate", "disable", "env", "overlap", "missed",
        "timeout", "jitter", "category", "retry",
    ]
    static let kindKeys = [
        "log": ["message", "level"],
        "command": ["command", "args", "shell", "cwd", "environment", "killGrace"],
    ]

    /// Reads the `schedule` section of a whole configuration (absent: no tasks), reporting every issue with its
    /// key path. `types` are the schedule types that exist besides `worker` and `all`.
    public init(_ root: ConfigValue, types: [String] = []) throws(ConfigurationError) {
        let issues = ConfigIssueCollector()
        self = Self.read(root["schedule"], types: types, issues: issues)
        try issues.throwIfAny()
    }

    /// Reads the section into `issues`; what has errors is left out of the result.
    public static func read(_ value: ConfigValue?, types: [String] = [], issues: ConfigIssueCollector) -> ScheduleConfiguration {
        var result = ScheduleConfiguration()
        guard let value else { return result }
        if case .null = value.kind { return result }
        guard let section = ConfigObjectReader(value, path: "schedule", allowedKeys: ["tasks", "shutdownTimeout"], issues: issues)
        else { return result }
        if let timeout = section.duration("shutdownTimeout") { result.shutdownTimeout = timeout }
        guard let tasks = section.object("tasks", allowedKeys: nil) else { return result }
        for (name, taskValue) in tasks.entries {
            if let task = readTask(name: name, taskValue, path: tasks.path(of: name), types: types, issues: issues) {
                result.tasks.append(task)
            }
        }
        return result
    }

    private static func readTask(
        name: String, _ value: ConfigValue, path: String, types: [String], issues: ConfigIssueCollector
    ) -> ConfiguredTask? {
        let before = issues.issues.count
        guard let probe = ConfigObjectReader(value, path: path, allowedKeys: nil, issues: issues) else { return nil }
        let kindName = probe.string("kind", required: true)
        let keysOfKind: [String]? = kindName.flatMap { Self.kindKeys[$0] }
        if let kindName, keysOfKind == nil {
            probe.report("kind", "unknown task kind \"\(kindName)\" at \(probe.path(of: "kind")); kinds are command, log")
        }
        guard let reader = ConfigObjectReader(
            value, path: path, allowedKeys: keysOfKind.map { Self.scheduleKeys + $0 }, issues: issues)
        else { return nil }

        var schedule = Schedule()
        schedule.interval = reader.raw("interval").map { raw in
            if case .int(let ms) = raw.kind { return String(ms) }
            return reader.string("interval") ?? ""
        }
        schedule.cron = reader.string("cron")
        if let options = reader.object("cronOptions", allowedKeys: ["tz"]) { schedule.timeZone = options.string("tz") }
        if let type = reader.string("type") {
            schedule.type = ScheduleType(type)
            if type != "worker", type != "all", !types.contains(type) {
                reader.report("type", "unknown schedule type \"\(type)\" at \(reader.path(of: "type")); types are \((["worker", "all"] + types).joined(separator: ", "))")
            }
        }
        schedule.immediate = reader.bool("immediate") ?? false
        schedule.disable = reader.bool("disable") ?? false
        schedule.env = reader.stringList("env")
        if let overlap = reader.string("overlap") {
            if let policy = OverlapPolicy(rawValue: overlap) {
                schedule.overlap = policy
            } else {
                reader.report("overlap", "unknown overlap policy \"\(overlap)\" at \(reader.path(of: "overlap")); policies are skip, allow, queue")
            }
        }
        if let missed = reader.string("missed") {
            if let policy = MissedPolicy(rawValue: missed) {
                schedule.missed = policy
            } else {
                reader.report("missed", "unknown missed-tick policy \"\(missed)\" at \(reader.path(of: "missed")); policies are skip, runOnce")
            }
        }
        schedule.timeout = reader.duration("timeout")
        schedule.jitter = reader.duration("jitter")
        schedule.retry = reader.bool("retry") ?? false
        for (key, message) in schedule.problems() {
            let field = key == "cronOptions.tz" ? "cronOptions" : key
            issues.add(at: reader.path(of: key), "\(message) at \(reader.path(of: key))", origin: (reader.raw(field) ?? value).origin)
        }
        let category = reader.string("category")

        var kind: ConfiguredTask.Kind?
        switch kindName {
        case "log":
            let message = reader.string("message", required: true) ?? ""
            var level = Logger.Level.info
            if let levelName = reader.string("level") {
                if let found = LogMessageSpec.level(named: levelName) {
                    level = found
                } else {
                    reader.report("level", "unknown level \"\(levelName)\" at \(reader.path(of: "level")); levels are TRACE, DEBUG, INFO, NOTICE, WARN, ERROR, FATAL")
                }
            }
            kind = .log(LogMessageSpec(message: message, level: level))
        case "command":
            var spec = CommandSpec(command: reader.string("command", required: true) ?? "")
            spec.arguments = reader.stringList("args") ?? []
            spec.shell = reader.bool("shell") ?? false
            spec.directory = reader.string("cwd")
            if let environment = reader.object("environment", allowedKeys: nil) {
                for key in environment.keys { spec.environment[key] = environment.string(key) ?? "" }
            }
            if let grace = reader.duration("killGrace") { spec.killGrace = grace }
            if spec.command.isEmpty, reader.has("command") {
                reader.report("command", "the command is empty at \(reader.path(of: "command"))")
            }
            kind = .command(spec)
        default:
            kind = nil
        }
        guard let kind, issues.issues.count == before else { return nil }
        return ConfiguredTask(name: name, schedule: schedule, category: category, kind: kind)
    }
}

/// A task declared in configuration.
public struct ConfiguredTask: Sendable {
    public enum Kind: Sendable, Hashable {
        /// Runs a program; its output goes line by line to the task's category.
        case command(CommandSpec)
        /// Writes a message to the task's category (heartbeats).
        case log(LogMessageSpec)
    }

    public var name: String
    public var schedule: Schedule
    public var category: String?
    public var kind: Kind

    public init(name: String, schedule: Schedule, category: String? = nil, kind: Kind) {
        self.name = name
        self.schedule = schedule
        self.category = category
        self.kind = kind
    }

    /// The task the scheduler runs.
    public var scheduledTask: ScheduledTask {
        switch kind {
        case .command(let spec):
            ScheduledTask(name: name, schedule: schedule, category: category) { context in
                try await spec.run(logger: context.logger)
            }
        case .log(let spec):
            ScheduledTask(name: name, schedule: schedule, category: category) { context in
                context.logger.log(level: spec.level, "\(spec.message)")
            }
        }
    }
}

extension ConfigObjectReader {
    /// A duration under `key` (`"30s"`, `"1m30s"`, `"250ms"`, or milliseconds); an issue when malformed or not more
    /// than zero.
    package func duration(_ key: String) -> Duration? {
        guard let raw = raw(key) else { return nil }
        let text: String
        switch raw.kind {
        case .int(let ms): text = String(ms)
        case .string(let s): text = s
        default:
            report(key, "expected a duration such as \"30s\" or milliseconds at \(path(of: key)), found \(raw.kindName)")
            return nil
        }
        do {
            return try Interval(parsing: text).duration
        } catch {
            report(key, "\(error) at \(path(of: key))")
            return nil
        }
    }
}
