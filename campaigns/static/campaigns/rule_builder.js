// The segment rule editor: groups (all / any) of conditions (field, operator, value, days), kept in the rule's
// textarea as the JSON of API.md. No library: the admin works offline.
(function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function select(options, value) {
    var node = el("select");
    options.forEach(function (option) {
      var item = el("option", { value: option.code, text: option.label });
      if (String(option.code) === String(value)) item.selected = true;
      node.appendChild(item);
    });
    return node;
  }

  function Builder(root) {
    this.root = root;
    this.textarea = document.getElementById(root.dataset.textarea);
    this.fields = JSON.parse(document.getElementById(root.dataset.fields).textContent);
    this.words = JSON.parse(document.getElementById(root.dataset.words).textContent);
    this.byName = {};
    this.fields.forEach(function (field) { this.byName[field.name] = field; }, this);
    var rule;
    try { rule = JSON.parse(this.textarea.value || "null"); } catch (error) { rule = null; }
    if (!rule || !(rule.all || rule.any)) rule = { all: [] };
    this.rule = rule;
    this.textarea.style.display = "none";
    this.render();
  }

  Builder.prototype.changed = function () {
    this.textarea.value = JSON.stringify(this.rule);
    this.root.dispatchEvent(new CustomEvent("rulechange", { bubbles: true }));
  };

  Builder.prototype.render = function () {
    this.root.innerHTML = "";
    this.root.appendChild(this.group(this.rule, null));
  };

  Builder.prototype.group = function (node, parent) {
    var self = this;
    var key = node.any ? "any" : "all";
    var box = el("div", { className: "rule-group" });
    var mode = select([{ code: "all", label: this.words.all }, { code: "any", label: this.words.any }], key);
    mode.addEventListener("change", function () {
      node[mode.value] = node[key]; delete node[key]; self.changed(); self.render();
    });
    var head = el("div", { className: "rule-group-head" }, [mode]);
    if (parent) {
      var remove = el("button", { type: "button", className: "rule-remove", text: "×", title: this.words.remove });
      remove.addEventListener("click", function () {
        parent.splice(parent.indexOf(node), 1); self.changed(); self.render();
      });
      head.appendChild(remove);
    }
    box.appendChild(head);
    node[key].forEach(function (item) {
      box.appendChild(item.all || item.any ? self.group(item, node[key]) : self.condition(item, node[key]));
    });
    var addCondition = el("button", { type: "button", className: "button", text: "+ " + this.words.condition });
    addCondition.addEventListener("click", function () {
      var field = self.fields[0];
      node[key].push({ field: field.name, op: field.operators[0].code, value: "" });
      self.changed(); self.render();
    });
    var addGroup = el("button", { type: "button", className: "button", text: "+ " + this.words.group });
    addGroup.addEventListener("click", function () { node[key].push({ any: [] }); self.changed(); self.render(); });
    box.appendChild(el("div", { className: "rule-add" }, [addCondition, addGroup]));
    return box;
  };

  Builder.prototype.parse = function (field, text) {
    if (field.kind === "number") {
      var number = Number(text);
      return text === "" || isNaN(number) ? text : number;
    }
    return text;
  };

  Builder.prototype.valueInput = function (field, condition) {
    var self = this;
    function input(value, onChange) {
      var node;
      if (field.choices) {
        node = select([{ code: "", label: "—" }].concat(field.choices.map(function (c) { return { code: c, label: c }; })), value);
      } else {
        node = el("input", { type: field.kind === "date" ? "date" : (field.kind === "number" ? "number" : "text") });
        if (field.kind === "number") node.step = "any";
        node.value = value === undefined || value === null ? "" : value;
      }
      node.addEventListener("change", function () { onChange(self.parse(field, node.value)); self.changed(); });
      return node;
    }
    var wrap = el("span", { className: "rule-value" });
    if (condition.op === "between") {
      var pair = Array.isArray(condition.value) ? condition.value : ["", ""];
      condition.value = pair;
      wrap.appendChild(input(pair[0], function (v) { pair[0] = v; }));
      wrap.appendChild(el("span", { text: " – " }));
      wrap.appendChild(input(pair[1], function (v) { pair[1] = v; }));
    } else if (condition.op === "in" || condition.op === "not_in") {
      var list = Array.isArray(condition.value) ? condition.value : (condition.value === "" ? [] : [condition.value]);
      condition.value = list;
      var text = el("input", { type: "text", placeholder: this.words.comma });
      text.value = list.join(", ");
      text.addEventListener("change", function () {
        condition.value = text.value.split(/[,，、]/).map(function (item) { return item.trim(); })
          .filter(function (item) { return item !== ""; })
          .map(function (item) { return self.parse(field, item); });
        self.changed();
      });
      wrap.appendChild(text);
    } else {
      if (Array.isArray(condition.value)) condition.value = condition.value[0] || "";
      wrap.appendChild(input(condition.value, function (v) { condition.value = v; }));
    }
    return wrap;
  };

  Builder.prototype.condition = function (condition, parent) {
    var self = this;
    var field = this.byName[condition.field] || this.fields[0];
    var row = el("div", { className: "rule-condition" });
    var fieldSelect = select(this.fields.map(function (f) { return { code: f.name, label: f.label }; }), field.name);
    fieldSelect.addEventListener("change", function () {
      var next = self.byName[fieldSelect.value];
      condition.field = next.name;
      condition.op = next.operators[0].code;
      condition.value = "";
      delete condition.days;
      if (next.needs_days) condition.days = 30;
      self.changed(); self.render();
    });
    var opSelect = select(field.operators, condition.op);
    opSelect.addEventListener("change", function () { condition.op = opSelect.value; self.changed(); self.render(); });
    row.appendChild(fieldSelect);
    row.appendChild(opSelect);
    row.appendChild(this.valueInput(field, condition));
    if (field.takes_days) {
      var days = el("input", { type: "number", min: "1", className: "rule-days", placeholder: this.words.ever });
      days.value = condition.days || "";
      days.addEventListener("change", function () {
        if (days.value === "") delete condition.days; else condition.days = Number(days.value);
        self.changed();
      });
      row.appendChild(el("span", { text: " " + this.words.within + " " }));
      row.appendChild(days);
      row.appendChild(el("span", { text: " " + this.words.days }));
    }
    var remove = el("button", { type: "button", className: "rule-remove", text: "×", title: this.words.remove });
    remove.addEventListener("click", function () { parent.splice(parent.indexOf(condition), 1); self.changed(); self.render(); });
    row.appendChild(remove);
    return row;
  };

  function preview(root) {
    var target = document.getElementById(root.dataset.preview);
    if (!target) return;
    var timer = null;
    function run() {
      var data = new FormData();
      data.append("rule", document.getElementById(root.dataset.textarea).value);
      var program = document.getElementById("id_program");
      data.append("program", program ? program.value : root.dataset.program);
      data.append("code", root.dataset.code || "");
      var token = document.querySelector("[name=csrfmiddlewaretoken]");
      fetch(root.dataset.url, { method: "POST", body: data, headers: { "X-CSRFToken": token ? token.value : "" },
                                credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (body) {
          target.innerHTML = "";
          if (body.errors) {
            target.appendChild(el("ul", { className: "errorlist" }, body.errors.map(function (e) { return el("li", { text: e }); })));
            return;
          }
          target.appendChild(el("p", {}, [el("strong", { text: body.count_text })]));
          target.appendChild(el("p", { text: body.words }));
          if (body.sample.length) target.appendChild(el("p", { className: "help", text: body.sample_text + " " + body.sample.join(", ") }));
        });
    }
    root.addEventListener("rulechange", function () { clearTimeout(timer); timer = setTimeout(run, 400); });
    var program = document.getElementById("id_program");
    if (program) program.addEventListener("change", run);
    run();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".rule-builder").forEach(function (root) { new Builder(root); preview(root); });
  });
})();
