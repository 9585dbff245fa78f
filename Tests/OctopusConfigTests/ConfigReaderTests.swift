import Testing

@testable import OctopusConfig

@Suite struct ConfigReaderTests {
    @Test func editDistanceCountsTranspositionsAsOneEdit() {
        #expect(ConfigObjectReader.editDistance("otu", "out") == 1)
        #expect(ConfigObjectReader.editDistance("kitten", "sitting") == 3)
        #expect(ConfigObjectReader.editDistance("", "abc") == 3)
        #expect(ConfigObjectReader.editDistance("same", "same") == 0)
    }

    @Test func suggestionsIgnoreCaseAndSurroundingSpaceAndRejectFarWords() {
        #expect(ConfigObjectReader.suggestion(for: "maxLogSize ", among: ["maxLogSize", "backups"]) == "maxLogSize")
        #expect(ConfigObjectReader.suggestion(for: "MAXLOGSIZE", among: ["maxLogSize"]) == "maxLogSize")
        #expect(ConfigObjectReader.suggestion(for: "bakups", among: ["maxLogSize", "backups"]) == "backups")
        #expect(ConfigObjectReader.suggestion(for: "zzz", among: ["maxLogSize", "backups"]) == nil)
    }

    @Test func yamlScalarsKeepTheirTypesAndQuotedOnesStayStrings() throws {
        let value = try ConfigLoader.parse("a: 1\nb: '1'\nc: true\nd: 1.5\ne: ~\nf: [x, 2]\n")
        #expect(value.description == #"{"a":1,"b":"1","c":true,"d":1.5,"e":null,"f":["x",2]}"#)
        #expect(value["f"]?.origin?.line == 6)
    }

    @Test func jsonIsReadToo() throws {
        let value = try ConfigLoader.parse(#"{"log": {"x": [1, "two", {"k": false}]}}"#, source: "c.json")
        #expect(value.description == #"{"log":{"x":[1,"two",{"k":false}]}}"#)
    }

    @Test func mergeIsDeepForObjectsAndReplacesEverythingElse() throws {
        let base = try ConfigLoader.parse("a: {b: 1, c: [1, 2], d: {e: 1}}\nz: 1\n")
        let overlay = try ConfigLoader.parse("a: {c: [3], d: {f: 2}}\ny: 2\n")
        #expect(base.merged(with: overlay).description == #"{"a":{"b":1,"c":[3],"d":{"e":1,"f":2}},"z":1,"y":2}"#)
    }

    @Test func duplicateKeysAreAnError() {
        #expect(throws: ConfigurationError.self) { try ConfigLoader.parse("a: 1\na: 2\n") }
    }

    @Test func issuesAreAllReported() {
        let collector = ConfigIssueCollector()
        let value = try? ConfigLoader.parse("x: 1\ny: 2\n")
        _ = value.flatMap { ConfigObjectReader($0, path: "root", allowedKeys: ["a"], issues: collector) }
        #expect(collector.issues.map(\.path) == ["root.x", "root.y"])
        #expect(throws: ConfigurationError.self) { try collector.throwIfAny() }
    }
}
