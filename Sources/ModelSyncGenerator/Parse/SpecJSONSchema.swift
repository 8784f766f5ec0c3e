import Foundation

/// The JSON Schema (draft 2020-12) of the `*.modelsync.yaml` format, built from ``SpecKeys`` so that
/// it accepts exactly the keys the parser accepts. Editors use it for completion and checks.
public enum SpecJSONSchema {
    /// The schema as pretty-printed JSON with sorted keys, ending with a newline.
    public static var text: String {
        let data = try! JSONSerialization.data(
            withJSONObject: schema, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// The property names the schema declares at each level, for tests.
    public static var keysByLevel: [String: [String]] {
        [
            "file": SpecKeys.file, "options": SpecKeys.options, "defaults": SpecKeys.defaults,
            "remote": SpecKeys.fileRemote, "model": SpecKeys.model, "modelRemote": SpecKeys.modelRemote,
            "field": SpecKeys.field, "relationship": SpecKeys.relationship,
        ]
    }

    static func enumeration<Value: RawRepresentable & CaseIterable>(_ type: Value.Type) -> [String: Any]
    where Value.RawValue == String {
        ["type": "string", "enum": type.allCases.map(\.rawValue)]
    }

    static func object(_ keys: [String], _ properties: [String: Any], required: [String] = []) -> [String: Any] {
        precondition(Set(keys) == Set(properties.keys), "schema properties differ from the parser's keys")
        var result: [String: Any] = ["type": "object", "additionalProperties": false, "properties": properties]
        if !required.isEmpty { result["required"] = required }
        return result
    }

    static var schema: [String: Any] {
        let identifier = "^[A-Za-z_][A-Za-z0-9_]*$"
        let typePattern = "^\\s*(\\[\\s*[A-Za-z_][A-Za-z0-9_]*\\s*\\]|[A-Za-z_][A-Za-z0-9_]*)\\??\\s*$"
        let typeString: [String: Any] = ["type": "string", "pattern": typePattern]
        let field: [String: Any] = [
            "oneOf": [
                typeString,
                object(
                    SpecKeys.field,
                    [
                        "type": typeString,
                        "enum": ["type": "array", "minItems": 1, "items": ["type": "string", "pattern": identifier]],
                        "unique": ["type": "boolean"],
                        "default": ["type": ["string", "number", "boolean", "null"]],
                        "optional": ["type": "boolean"],
                        "renamedFrom": ["type": "string", "pattern": identifier],
                        "mapping": [
                            "type": "object", "additionalProperties": ["type": "string", "pattern": identifier],
                        ],
                    ]),
            ]
        ]
        let removedList: [String: Any] = [
            "oneOf": [
                ["type": "string", "pattern": identifier],
                ["type": "array", "items": ["type": "string", "pattern": identifier]],
            ]
        ]
        var relationshipProperties: [String: Any] = [
            "optional": ["type": "boolean"],
            "onDelete": enumeration(DeleteRuleValue.self),
            "inverse": ["type": "string", "pattern": identifier],
            "through": ["type": "string", "pattern": identifier],
            "renamedFrom": ["type": "string", "pattern": identifier],
        ]
        for kind in SpecKeys.relationshipKinds {
            relationshipProperties[kind] = ["type": "string", "pattern": identifier]
        }
        var relationship = object(SpecKeys.relationship, relationshipProperties)
        relationship["oneOf"] = SpecKeys.relationshipKinds.map { ["required": [$0]] }
        let model = object(
            SpecKeys.model,
            [
                "idGeneration": enumeration(IDGenerationValue.self),
                "idFormat": enumeration(IDFormatValue.self),
                "idPrefix": ["type": "string", "not": ["pattern": "^tmp_"]],
                "remote": object(
                    SpecKeys.modelRemote,
                    ["path": ["type": "string", "pattern": "^/"], "idType": enumeration(RemoteIDTypeValue.self)]),
                "fields": [
                    "type": ["object", "null"], "propertyNames": ["pattern": identifier],
                    "additionalProperties": field,
                ],
                "relationships": [
                    "type": ["object", "null"], "propertyNames": ["pattern": identifier],
                    "additionalProperties": relationship,
                ],
                "renamedFrom": ["type": "string", "pattern": identifier],
                "removed": removedList,
            ])
        var root = object(
            SpecKeys.file,
            [
                "version": ["const": 1],
                "options": object(
                    SpecKeys.options,
                    [
                        "accessModifier": enumeration(AccessModifier.self), "templates": ["type": "string"],
                        "schemaVersion": ["type": "integer", "minimum": 1],
                        "oldestClientSchemaVersion": ["type": "integer", "minimum": 1],
                    ]),
                "defaults": object(
                    SpecKeys.defaults,
                    ["idGeneration": enumeration(IDGenerationValue.self), "idFormat": enumeration(IDFormatValue.self)]),
                "remote": object(SpecKeys.fileRemote, ["fieldNaming": enumeration(FieldNamingValue.self)]),
                "models": [
                    "type": ["object", "null"], "propertyNames": ["pattern": identifier],
                    "additionalProperties": ["anyOf": [["type": "null"], model]],
                ],
                "removed": removedList,
            ],
            required: ["version", "models"])
        root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        root["title"] = "ModelSync spec (*.modelsync.yaml)"
        return root
    }
}
