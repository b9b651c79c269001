# Two addons. edgepoll.node is the engine (what serves); edgepoll_loadgen.node
# is the load generator, loaded only by bench (src/binding.ts tryLoadLoadgen).
# node-gyp-build and prebuildify take the first *.node of build/Release in
# sorted order, so the load generator's name must sort after "edgepoll.node".
{
  "variables": {
    "edgepoll_defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"]
  },
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["<@(edgepoll_defines)"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++1y", "-std=gnu++17"],
    "cflags": ["-Wall", "-Wextra", "-fvisibility=hidden", "-O2"],
    "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fvisibility=hidden", "-fno-exceptions", "-O2", "-Wno-unused-parameter"],
    "ldflags": ["-pthread"]
  },
  "targets": [
    {
      "target_name": "edgepoll",
      "conditions": [
        ["OS!='linux'", { "type": "none" }],
        ["OS=='linux'", {
          "sources": [
            "<!@(node -e \"const fs=require('fs');for(const f of fs.readdirSync('native').sort())if(f.endsWith('.cc'))console.log('native/'+f)\")"
          ]
        }]
      ]
    },
    {
      "target_name": "edgepoll_loadgen",
      "conditions": [
        ["OS!='linux'", { "type": "none" }],
        ["OS=='linux'", {
          "sources": [
            "<!@(node -e \"const fs=require('fs');for(const f of fs.readdirSync('native/loadgen').sort())if(f.endsWith('.cc'))console.log('native/loadgen/'+f)\")"
          ]
        }]
      ]
    }
  ]
}
