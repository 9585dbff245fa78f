import Foundation

/// Collects every ``ConfigIssue`` found while reading a configuration, so all are reported at once.
public final class ConfigIssueCollector {
    public private(set) var issues: [ConfigIssue] = []
    /// What is accepted but should change (deprecated keys); never stops a start.
    public private(set) var warnings: [ConfigIssue] = []

    public init() {}

    public func add(_ issue: ConfigIssue) {
        issues.append(issue)
    }

    public func add(at path: String, _ message: String, origin: ConfigOrigin?) {
        issues.append(ConfigIssue(path: path, message: message, origin: origin))
    }

    public func warn(at path: String, _ message: String, origin: ConfigOrigin?) {
        warnings.append(ConfigIssue(path: path, message: message, origin: origin))
    }

    /// Throws a ``ConfigurationError`` holding every issue, if there is any.
    public func throwIfAny() throws(ConfigurationError) {
        if !issues.isEmpty { throw ConfigurationError(issues) }
    }
}

/// Strict, typed reading of one configuration object: every key is checked against the keys its reader
/// allows (an unknown key is an issue with a did-you-mean), and a value of the wrong kind is an issue naming
/// its key path. Readers never stop at the first issue.
public struct ConfigObjectReader {
    public let value: ConfigValue
    public let path: String
    public let issues: ConfigIssueCollector
    private let pairs: [(key: String, value: ConfigValue)]

    /// Reads `value` as an object allowing only `allowedKeys`; reports and returns `nil` when it is not one.
    public init?(_ value: ConfigValue, path: String, allowedKeys: [String]?, issues: ConfigIssueCollector) {
        guard let pairs = value.objectPairs else {
            issues.add(at: path, "expected an object at \(path.isEmpty ? "the top level" : path), found \(value.kindName)", origin: value.origin)
            return nil
        }
        self.value = value
        self.path = path
        self.issues = issues
        self.pairs = pairs
        if let allowedKeys {
            for (key, child) in pairs where !allowedKeys.contains(key) {
                var message = "unknown key \"\(key)\" at \(path.isEmpty ? "the top level" : path)"
                if let suggestion = Self.suggestion(for: key, among: allowedKeys) {
                    message += "; did you mean \"\(suggestion)\"?"
                } else {
                    message += "; allowed keys: \(allowedKeys.joined(separator: ", "))"
                }
                issues.add(at: Self.join(path, key), message, origin: child.origin ?? value.origin)
            }
        }
    }

    public var keys: [String] { pairs.map(\.key) }

    public func has(_ key: String) -> Bool { pairs.contains { $0.key == key } }

    /// The raw value under `key`, if present and not null.
    public func raw(_ key: String) -> ConfigValue? {
        guard let found = pairs.last(where: { $0.key == key })?.value else { return nil }
        if case .null = found.kind { return nil }
        return found
    }

    /// The key path of `key` in this object.
    public func path(of key: String) -> String { Self.join(path, key) }

    /// Reports an issue about the value under `key`.
    public func report(_ key: String, _ message: String) {
        issues.add(at: path(of: key), message, origin: raw(key)?.origin ?? value.origin)
    }

    public func string(_ key: String, required: Bool = false) -> String? {
        guard let found = raw(key) else {
            if required { missing(key, "a string") }
            return nil
        }
        switch found.kind {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return String(b)
        default:
            wrongKind(key, found, expected: "a string")
            return nil
        }
    }

    public func bool(_ key: String) -> Bool? {
        guard let found = raw(key) else { return nil }
        if case .bool(let b) = found.kind { return b }
        if case .string(let s) = found.kind, let b = Bool(s.lowercased()) { return b }
        wrongKind(key, found, expected: "true or false")
        return nil
    }

    public func int(_ key: String) -> Int? {
        guard let found = raw(key) else { return nil }
        switch found.kind {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.0e15: return Int(d)
        case .string(let s) where Int(s) != nil: return Int(s)
        default:
            wrongKind(key, found, expected: "an integer")
            return nil
        }
    }

    /// A list of strings; a single string is accepted as a list of one (as log4js does).
    public func stringList(_ key: String, required: Bool = false) -> [String]? {
        guard let found = raw(key) else {
            if required { missing(key, "a list of strings") }
            return nil
        }
        switch found.kind {
        case .string(let s): return [s]
        case .array(let items):
            var out: [String] = []
            for (index, item) in items.enumerated() {
                if case .string(let s) = item.kind {
                    out.append(s)
                } else {
                    issues.add(
                        at: path(of: key) + "[\(index)]",
                        "expected a string at \(path(of: key))[\(index)], found \(item.kindName)",
                        origin: item.origin ?? found.origin
                    )
                }
            }
            return out
        default:
            wrongKind(key, found, expected: "a list of strings")
            return nil
        }
    }

    /// A nested object under `key`, read with its own allowed keys.
    public func object(_ key: String, allowedKeys: [String]?, required: Bool = false) -> ConfigObjectReader? {
        guard let found = raw(key) else {
            if required { missing(key, "an object") }
            return nil
        }
        return ConfigObjectReader(found, path: path(of: key), allowedKeys: allowedKeys, issues: issues)
    }

    /// The pairs of this object, in file order.
    public var entries: [(key: String, value: ConfigValue)] { pairs }

    private func missing(_ key: String, _ what: String) {
        issues.add(at: path(of: key), "missing key \"\(key)\" at \(path) (\(what))", origin: value.origin)
    }

    private func wrongKind(_ key: String, _ found: ConfigValue, expected: String) {
        issues.add(
            at: path(of: key),
            "expected \(expected) at \(path(of: key)), found \(found.kindName)",
            origin: found.origin ?? value.origin
        )
    }

    static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : path + "." + key
    }

    /// The allowed key closest to `key`, when one is close enough to be a likely typo.
    public static func suggestion(for key: String, among candidates: [String]) -> String? {
        let normalized = key.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if let exact = candidates.first(where: { $0.lowercased() == normalized }) { return exact }
        var best: (String, Int)?
        for candidate in candidates {
            let distance = editDistance(normalized, candidate.lowercased())
            if distance <= max(1, candidate.count / 3), distance < (best?.1 ?? Int.max) {
                best = (candidate, distance)
            }
        }
        return best?.0
    }

    /// Edit distance counting insertions, deletions, substitutions and transpositions of neighbours as one edit
    /// each (optimal string alignment): typed-too-fast typos such as "otu" for "out" are one edit away.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars)
        let b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var beforePrevious = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], beforePrevious[j - 2] + 1)
                }
            }
            (beforePrevious, previous, current) = (previous, current, beforePrevious)
        }
        return previous[b.count]
    }
}
