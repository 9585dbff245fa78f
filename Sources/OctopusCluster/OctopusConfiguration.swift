public import OctopusConfig
public import OctopusLog
public import OctopusSchedule

/// The whole configuration of an Octopus service, read from `config/`: every section checked, every issue
/// reported at once.
public struct OctopusConfiguration: Sendable {
    /// The top-level sections Octopus knows.
    public static let sections = ["log", "schedule", "cluster"]

    /// The merged configuration as read (for `config check`).
    public var value: ConfigValue
    public var environment: String
    public var log: LogConfiguration
    /// The name of the schedule log's appender when the configuration did not define the `schedule` category and it
    /// was added (see ``addScheduleLog(to:)``).
    public let defaultScheduleAppender: String?

    /// `log` without the schedule log added by default: what a command that runs no schedule opens (it creates no
    /// `logs/schedule.log`).
    public var logWithoutSchedules: LogConfiguration {
        var log = self.log
        if let name = defaultScheduleAppender {
            log.appenders[name] = nil
            log.categories["schedule"] = nil
        }
        return log
    }
    public var schedule: ScheduleConfiguration
    public var cluster: ClusterConfiguration

    /// Loads `config.default.*` overlaid by `config.<environment>.*` from `directory` and checks every section.
    public static func load(directory: String = "config", environment: String? = nil) throws(ConfigurationError) -> OctopusConfiguration {
        let env = environment ?? ConfigLoader.environmentFromProcess
        let value = try ConfigLoader.load(directory: directory, environment: env)
        return try OctopusConfiguration(value, environment: env)
    }

    public init(_ value: ConfigValue, environment: String) throws(ConfigurationError) {
        let issues = ConfigIssueCollector()
        _ = ConfigObjectReader(value, path: "", allowedKeys: Self.sections, issues: issues)
        var log = LogConfiguration(appenders: [:], categories: [:])
        do {
            log = try LogConfiguration(value, requireSection: true)
        } catch {
            for issue in error.issues { issues.add(issue) }
        }
        let schedule = ScheduleConfiguration.read(value["schedule"], issues: issues)
        let cluster = ClusterConfiguration.read(value["cluster"], issues: issues)
        try issues.throwIfAny()
        self.defaultScheduleAppender = Self.addScheduleLog(to: &log)
        self.value = value
        self.environment = environment
        self.log = log
        self.schedule = schedule
        self.cluster = cluster
    }

    /// The schedule log's category, when the configuration does not define one: `logs/schedule.log`, a file a day,
    /// compressed, two weeks kept, and nowhere else (`inherit: false`).
    static func addScheduleLog(to log: inout LogConfiguration) -> String? {
        guard log.categories["schedule"] == nil else { return nil }
        var name = "scheduleFile"
        while log.appenders[name] != nil { name += "_" }
        log.appenders[name] = AppenderConfiguration(
            .dateFile(DateFileAppenderOptions(filename: "logs/schedule.log", numBackups: 14, compress: true)),
            layout: .pattern("%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m%X", tokens: [:], timeZone: .local)
        )
        log.categories["schedule"] = CategoryConfiguration(appenders: [name], level: .info, inherit: false)
        return name
    }

    /// A scheduler holding every task of the `schedule:` section, logging through `logging` (the schedule log is
    /// category `schedule`; a task's own lines go to its category, `schedule.NAME` unless set).
    public func makeScheduler(logging: LogSystem, clock: any ScheduleClock = SystemScheduleClock.shared) throws(ScheduleError) -> Scheduler {
        let scheduler = Scheduler(
            environment: environment, clock: clock, log: logging.logger(label: "schedule"),
            makeLogger: { logging.logger(label: $0) }, configuration: value,
            shutdownTimeout: schedule.shutdownTimeout)
        for task in schedule.tasks { try scheduler.register(task.scheduledTask) }
        return scheduler
    }
}
