// Version 1 of the notes app: the build plugin generates its models from Notes.modelsync.yaml.
import ModelSync
