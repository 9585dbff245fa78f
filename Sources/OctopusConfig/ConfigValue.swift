/// Where a configuration value was written: a file (or a label such as `<string>`) and a 1-based line.
public struct ConfigOrigin: Sendable, Hashable, CustomStringConvertible {
    /// The file the value came from, or a label such as `<string>` for text given in code.
    public var source: String
    /// The 1-based line, when known.
    public var line: Int?

    public init(source: String, line: Int? = nil) {
        self.source = source
        self.line = line
    }

    public var description: String {
        if let line { return "\(source):\(line)" }
        return source
    }
}

/// A configuration value as read from YAML or JSON, before it is given a meaning.
///
/// Objects keep their key order (so messages and `config check` output follow the file), and every value
/// remembers its ``ConfigOrigin`` so that an error can say which file and line to fix.
public struct ConfigValue: Sendable, CustomStringConvertible {
    public indirect enum Kind: Sendable {
        case null
        case bool(Bool)
        case int(Int)
        case double(Double)
        case string(String)
        case array([ConfigValue])
        case object([(key: String, value: ConfigValue)])
    }

    public var kind: Kind
    public var origin: ConfigOrigin?

    public init(_ kind: Kind, origin: ConfigOrigin? = nil) {
        self.kind = kind
        self.origin = origin
    }

    /// An empty object.
    public static var emptyObject: ConfigValue { ConfigValue(.object([])) }

    /// The value under `key` when this is an object.
    public subscript(key: String) -> ConfigValue? {
        guard case .object(let pairs) = kind else { return nil }
        return pairs.last(where: { $0.key == key })?.value
    }

    /// The pairs of an object, or `nil` for any other kind.
    public var objectPairs: [(key: String, value: ConfigValue)]? {
        if case .object(let pairs) = kind { return pairs }
        return nil
    }

    /// A word for the kind of value, for messages (`expected a string, found a list`).
    public var kindName: String {
        switch kind {
        case .null: "null"
        case .bool: "a boolean"
        case .int: "an integer"
        case .double: "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }

    /// Overlays `other` on this value: objects merge key by key (recursively); anything else is replaced.
    public func merged(with other: ConfigValue) -> ConfigValue {
        guard case .object(var mine) = kind, case .object(let theirs) = other.kind else { return other }
        for (key, value) in theirs {
            if let index = mine.firstIndex(where: { $0.key == key }) {
                mine[index].value = mine[index].value.merged(with: value)
            } else {
                mine.append((key, value))
            }
        }
        return ConfigValue(.object(mine), origin: origin ?? other.origin)
    }

    /// The value as JSON text (objects keep their order), for `config check` and tests.
    public var description: String { jsonText(indent: 0, pretty: false) }

    /// The value as indented JSON text.
    public var prettyJSON: String { jsonText(indent: 0, pretty: true) }

    private func jsonText(indent: Int, pretty: Bool) -> String {
        let pad = pretty ? String(repeating: "  ", count: indent + 1) : ""
        let close = pretty ? String(repeating: "  ", count: indent) : ""
        let newline = pretty ? "\n" : ""
        let colon = pretty ? ": " : ":"
        switch kind {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return d.isFinite ? String(d) : "null"
        case .string(let s): return Self.quoted(s)
        case .array(let items):
            if items.isEmpty { return "[]" }
            let inner = items.map { pad + $0.jsonText(indent: indent + 1, pretty: pretty) }
            return "[" + newline + inner.joined(separator: "," + newline) + newline + close + "]"
        case .object(let pairs):
            if pairs.isEmpty { return "{}" }
            let inner = pairs.map { pad + Self.quoted($0.key) + colon + $0.value.jsonText(indent: indent + 1, pretty: pretty) }
            return "{" + newline + inner.joined(separator: "," + newline) + newline + close + "}"
        }
    }

    /// A JSON string literal for `text`.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
