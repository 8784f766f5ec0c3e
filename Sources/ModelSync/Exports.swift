// App code queries with GRDB's query interface (`Message.filter(Message.Columns.role == "user")`,
// `QueryInterfaceRequest`): `import ModelSync` brings it, so that an app needs no `import GRDB`.
@_exported import GRDB
