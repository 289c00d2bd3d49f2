// Starts `bedrock-rules lsp` for *.rules files; the grammar in ../ highlights them.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("bedrock-rules").get("command");
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  client = new LanguageClient(
    "bedrock-rules",
    "bedrock-rules",
    { command, args, options: { cwd: folder } },  // messages name files relative to the workspace, as the CLI does
    { documentSelector: [{ scheme: "file", language: "bedrock-rules" }] },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client?.stop();
}

module.exports = { activate, deactivate };
