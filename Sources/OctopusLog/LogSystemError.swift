/// An error from building or running a ``LogSystem``: a file that cannot be opened, or a configuration that
/// cannot be made into appenders.
public struct LogSystemError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure; new kinds may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case cannotOpen, invalidConfiguration, shutDown
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A file or its directory could not be opened or created.
        public static let cannotOpen = Code(.cannotOpen)
        /// The configuration is not valid (see the message for every issue).
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The log system was already shut down.
        public static let shutDown = Code(.shutDown)

        public var description: String { base.rawValue }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
