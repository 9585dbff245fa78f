// Helpers shared by the test targets.
public import Logging
import Synchronization
public import Testing

/// Collects every log line, from any logger it makes, with its label and level.
public final class LineCollector: Sendable {
    private let lines = Mutex<[(label: String, level: Logger.Level, message: String)]>([])

    public init() {}

    public func logger(_ label: String) -> Logger {
        Logger(label: label) { label in Handler(label: label, collector: self) }
    }

    public var messages: [String] { lines.withLock { $0.map(\.message) } }
    public func messages(label: String) -> [String] {
        lines.withLock { $0.filter { $0.label == label }.map(\.message) }
    }
    public func count(_ fragment: String) -> Int { messages.filter { $0.contains(fragment) }.count }

    fileprivate func append(_ label: String, _ level: Logger.Level, _ message: String) {
        lines.withLock { $0.append((label, level, message)) }
    }

    struct Handler: LogHandler {
        let label: String
        let collector: LineCollector
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            collector.append(label, event.level, event.message.description)
        }
    }
}

/// Waits (polling, without depending on how long it takes) until `condition` holds; fails after a generous limit.
public func eventually(
    _ what: String = "condition", within limit: Duration = .seconds(20), sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () -> Bool
) async {
    let start = ContinuousClock.now
    while !condition() {
        if ContinuousClock.now - start > limit {
            Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
            return
        }
        try? await Task.sleep(for: .milliseconds(2))
    }
}
