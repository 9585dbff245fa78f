public import OctopusConfig
public import OctopusLog

/// The whole configuration of an Octopus service, read from `config/`: every section checked, every issue
/// reported at once.
public struct OctopusConfiguration: Sendable {
    /// The top-level sections Octopus knows.
    public static let sections = ["log"]

    /// The merged configuration as read (for `config check`).
    public var value: ConfigValue
    public var environment: String
    public var log: LogConfiguration

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
        try issues.throwIfAny()
        self.value = value
        self.environment = environment
        self.log = log
    }
}
