import Foundation
import ModelSyncGenerator
import Yams

/// A synthetic spec of `count` models: each has five fields (one enum, one optional, one array), a
/// required belongsTo to an earlier model, an optional one, a hasMany back, and every tenth model a
/// manyToMany through a join model.
func syntheticSpec(models count: Int) -> String {
    var yaml = "version: 1\noptions:\n  accessModifier: public\ndefaults:\n  idGeneration: client\n"
    yaml += "remote:\n  fieldNaming: snake_case\nmodels:\n"
    for index in 0..<count {
        yaml += "  Model\(index):\n"
        if index % 3 == 0 { yaml += "    idGeneration: server\n    remote: { idType: int }\n" }
        yaml += "    fields:\n"
        yaml += "      title: { type: String, default: \"Item \(index)\" }\n"
        yaml += "      count: Int\n      note: String?\n      tags: \"[String]\"\n"
        yaml += "      state: { enum: [draft, active, archived] }\n"
        guard index > 0 else { continue }
        yaml += "    relationships:\n"
        yaml += "      parent: { belongsTo: Model\(index - 1), onDelete: cascade }\n"
        yaml += "      related: { belongsTo: Model\(index / 2), optional: true, onDelete: nullify }\n"
        if index + 1 < count { yaml += "      children: { hasMany: Model\(index + 1), inverse: parent }\n" }
    }
    return yaml
}

/// Generates a synthetic 500-model spec with ModelSync (parse, validate, translate, render) and
/// parses the same YAML with Yams alone (`Yams.load`, the baseline); returns the best time of a few
/// runs of each, in milliseconds. The ratio ours/baseline is the figure to watch (target: <= 3).
func runGeneratorBenchmark(quick: Bool) throws -> (oursMs: Double, baselineMs: Double) {
    let spec = syntheticSpec(models: 500)
    let source = SpecSource(path: "Synthetic.modelsync.yaml", text: spec)
    let runs = quick ? 3 : 7
    func best(_ body: () throws -> Void) rethrows -> Double {
        var fastest = Double.infinity
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000_000)
        }
        return fastest
    }
    var generatedBytes = 0
    let ours = try best {
        let result = try ModelSyncGenerator.generate([source])
        generatedBytes = result.files.reduce(0) { $0 + $1.contents.utf8.count }
    }
    precondition(generatedBytes > 0)
    let baseline = try best { _ = try Yams.load(yaml: spec) }
    return (ours, baseline)
}
