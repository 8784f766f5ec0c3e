// Apps query their records with GRDB's query interface (`Message.filter(Message.Columns.role == "user")`,
// `ValueObservation`, `Row`), so `import ModelSync` brings GRDB with it. Writes stay ModelSync's:
// models are not `PersistableRecord`s and the store exposes no writer but `writeBypassingSync`.
@_exported import GRDB
