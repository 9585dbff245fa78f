import Foundation
import Yams

/// Reads configuration text (YAML, or JSON, which the YAML parser also reads) into ``ConfigValue``s, and the
/// `config/` directory convention: `config.default.yaml` overlaid by `config.<env>.yaml`.
public enum ConfigLoader {
    /// The environment used when neither an argument nor `OCTOPUS_ENV` names one.
    public static let defaultEnvironment = "local"

    /// The environment named by `OCTOPUS_ENV`, else ``defaultEnvironment``.
    public static var environmentFromProcess: String {
        if let env = ProcessInfo.processInfo.environment["OCTOPUS_ENV"], !env.isEmpty { return env }
        return defaultEnvironment
    }

    /// Parses YAML or JSON text. An empty document is an empty object.
    ///
    /// - Parameter source: a name for messages, such as a file path.
    public static func parse(_ text: String, source: String = "<string>") throws(ConfigurationError) -> ConfigValue {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigurationError([ConfigIssue(path: "", message: Self.describe(error, source: source))])
        } catch {
            throw ConfigurationError([ConfigIssue(path: "", message: "cannot parse \(source): \(error)")])
        }
        guard let node else { return ConfigValue(.object([]), origin: ConfigOrigin(source: source, line: 1)) }
        var issues: [ConfigIssue] = []
        let value = convert(node, source: source, path: "", issues: &issues)
        if !issues.isEmpty { throw ConfigurationError(issues) }
        return value
    }

    /// The files that make up the configuration of `environment` in `directory`, in overlay order.
    ///
    /// For each layer (`default`, then the environment) the first of `.yaml`, `.yml` and `.json` that exists is
    /// taken.
    public static func files(directory: String, environment: String) -> [String] {
        var found: [String] = []
        let layers = environment == "default" ? ["default"] : ["default", environment]
        for layer in layers {
            for ext in ["yaml", "yml", "json"] {
                let path = (directory as NSString).appendingPathComponent("config.\(layer).\(ext)")
                if FileManager.default.fileExists(atPath: path) {
                    found.append(path)
                    break
                }
            }
        }
        return found
    }

    /// Loads `config.default.*` from `directory` and overlays `config.<environment>.*` on it (deep merge).
    ///
    /// A missing directory or a missing default file is an error; a missing environment file is not.
    public static func load(directory: String, environment: String? = nil) throws(ConfigurationError) -> ConfigValue {
        let env = environment ?? environmentFromProcess
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw ConfigurationError([ConfigIssue(path: "", message: "configuration directory \"\(directory)\" does not exist")])
        }
        let paths = files(directory: directory, environment: env)
        guard let first = paths.first, (first as NSString).lastPathComponent.hasPrefix("config.default.") else {
            throw ConfigurationError([
                ConfigIssue(path: "", message: "no config.default.yaml (or .yml, .json) in \"\(directory)\"")
            ])
        }
        var result = ConfigValue.emptyObject
        var issues: [ConfigIssue] = []
        for path in paths {
            do {
                let text = try String(contentsOfFile: path, encoding: .utf8)
                let value = try parse(text, source: path)
                if value.objectPairs == nil {
                    issues.append(ConfigIssue(path: "", message: "\(path) must hold an object at its top level, found \(value.kindName)"))
                    continue
                }
                result = result.merged(with: value)
            } catch let error as ConfigurationError {
                issues += error.issues
            } catch {
                issues.append(ConfigIssue(path: "", message: "cannot read \(path): \(error.localizedDescription)"))
            }
        }
        if !issues.isEmpty { throw ConfigurationError(issues) }
        return result
    }

    private static func convert(_ node: Node, source: String, path: String, issues: inout [ConfigIssue]) -> ConfigValue {
        let origin = ConfigOrigin(source: source, line: node.mark.map { $0.line })
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain || scalar.style == .any {
                switch Tag.Name(rawValue: node.tag.description) {
                case .null: return ConfigValue(.null, origin: origin)
                case .bool: if let b = Bool.construct(from: scalar) { return ConfigValue(.bool(b), origin: origin) }
                case .int: if let i = Int.construct(from: scalar) { return ConfigValue(.int(i), origin: origin) }
                case .float: if let d = Double.construct(from: scalar) { return ConfigValue(.double(d), origin: origin) }
                default: break
                }
            }
            return ConfigValue(.string(scalar.string), origin: origin)
        case .sequence(let sequence):
            var items: [ConfigValue] = []
            for (index, item) in sequence.enumerated() {
                items.append(convert(item, source: source, path: path + "[\(index)]", issues: &issues))
            }
            return ConfigValue(.array(items), origin: origin)
        case .mapping(let mapping):
            var pairs: [(key: String, value: ConfigValue)] = []
            for (keyNode, valueNode) in mapping {
                guard case .scalar(let keyScalar) = keyNode else {
                    issues.append(ConfigIssue(path: path, message: "a key at \(path.isEmpty ? "the top level" : path) is not a plain string", origin: origin))
                    continue
                }
                let key = keyScalar.string
                let child = path.isEmpty ? key : path + "." + key
                pairs.append((key, convert(valueNode, source: source, path: child, issues: &issues)))
            }
            return ConfigValue(.object(pairs), origin: origin)
        case .alias:
            issues.append(ConfigIssue(path: path, message: "an unresolved YAML alias at \(path)", origin: origin))
            return ConfigValue(.null, origin: origin)
        }
    }

    private static func describe(_ error: YamlError, source: String) -> String {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return "\(source):\(mark.line):\(mark.column): invalid YAML/JSON: \(problem)"
        case .duplicatedKeysInMapping(let duplicates, _):
            return "\(source): duplicated keys \(duplicates.map { "\"\($0)\"" }.joined(separator: ", "))"
        default:
            return "\(source): invalid YAML/JSON: \(error)"
        }
    }
}
