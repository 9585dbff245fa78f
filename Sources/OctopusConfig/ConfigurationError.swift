/// One thing wrong with a configuration: what, at which key path, and in which file and line.
public struct ConfigIssue: Sendable, Hashable, CustomStringConvertible {
    /// The dotted key path of the value at fault (`log.appenders.app.maxLogSize`); empty for the whole file.
    public var path: String
    /// A sentence saying what is wrong, naming the key path.
    public var message: String
    /// Where the value was written, when known.
    public var origin: ConfigOrigin?

    public init(path: String, message: String, origin: ConfigOrigin? = nil) {
        self.path = path
        self.message = message
        self.origin = origin
    }

    public var description: String {
        guard let origin else { return message }
        return "\(message) (\(origin))"
    }
}

/// Every issue found in a configuration. Nothing is started from a configuration that has any.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var issues: [ConfigIssue]

    public init(_ issues: [ConfigIssue]) {
        self.issues = issues
    }

    public var description: String {
        let count = issues.count == 1 ? "1 error" : "\(issues.count) errors"
        return "invalid configuration (\(count)):\n" + issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}
