export {
  BUILTIN_SCRIPT_NAME,
  builtinScriptSource,
  checkCollectionScript,
  DEFAULT_LIMITS,
  loadCollectionScript,
  REQUIRED_HOOKS,
  ScriptFailure,
  type LoadCollectionScriptOptions,
  type ScriptIssue,
  type ScriptLimits,
} from './collection-script.js';
