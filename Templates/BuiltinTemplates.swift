import Foundation

/// The built-in Mustache templates of ModelSync, shipped as resources of this target.
///
/// `file.mustache` lays out one generated Swift file, `model.mustache` one model (a partial of
/// `file`), `registry.mustache` the `GeneratedModels` registry. A spec's `options.templates` folder
/// may override any of them by name.
public enum BuiltinTemplates {
    /// The names of the built-in templates, without the `.mustache` extension.
    public static let names = ["file", "model", "registry", "sync-members"]

    /// The text of each built-in template, keyed by name.
    public static func load() throws -> [String: String] {
        var templates: [String: String] = [:]
        for name in names {
            guard let url = Bundle.module.url(forResource: name, withExtension: "mustache") else {
                throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "\(name).mustache"])
            }
            templates[name] = try String(contentsOf: url, encoding: .utf8)
        }
        return templates
    }
}
